package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// writeDiffTar writes the folder dir, a set of changes in overlay form (an
// overlay upper directory: deletions as 0/0 character devices, replaced
// directories marked trusted.overlay.opaque=y), as a layer tarball in OCI
// form: each deletion becomes a .wh.NAME entry and each opaque directory a
// .wh..wh..opq entry inside it; overlayfs's own attributes stay out. The
// folder's root itself is not an entry. Entries come in lexical order with
// neither access nor change times, so the same changes always make the same
// tarball, and the same diff ID. It returns the number of entries written.
func writeDiffTar(ctx context.Context, dir string, w io.Writer) (int, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	dw := &diffWriter{ctx: ctx, root: root, tw: tar.NewWriter(w), links: map[[2]uint64]string{}}
	// WalkDir reads with lstat and never follows a symlink.
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		return dw.entry(name)
	})
	if err != nil {
		return 0, err
	}
	if err := dw.tw.Close(); err != nil {
		return 0, err
	}
	return dw.n, nil
}

type diffWriter struct {
	ctx  context.Context
	root *os.Root
	tw   *tar.Writer
	// links maps the device and inode of a file of several names to the
	// first name written: the others become hard links to it.
	links map[[2]uint64]string
	n     int
}

func (dw *diffWriter) write(hdr *tar.Header, body io.Reader) error {
	hdr.Format = tar.FormatPAX
	if err := dw.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	dw.n++
	if body != nil {
		if _, err := io.Copy(dw.tw, ctxReader{dw.ctx, body}); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	return nil
}

func (dw *diffWriter) entry(name string) error {
	if err := dw.ctx.Err(); err != nil {
		return err
	}
	full := filepath.Join(dw.root.Name(), name)
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		return fmt.Errorf("%s: lstat: %w", name, err)
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: timeOf(st.Mtim),
	}
	xattrs, opaque, err := readXattrs(full)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(xattrs) > 0 {
		hdr.PAXRecords = xattrs
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		if err := dw.write(hdr, nil); err != nil {
			return err
		}
		if opaque {
			return dw.write(&tar.Header{Typeflag: tar.TypeReg, Name: path.Join(name, opaqueMarker), ModTime: hdr.ModTime}, nil)
		}
		return nil
	case unix.S_IFCHR:
		if st.Rdev == 0 {
			// A whiteout: the name is deleted.
			return dw.write(&tar.Header{
				Typeflag: tar.TypeReg,
				Name:     path.Join(path.Dir(name), whiteoutPrefix+path.Base(name)),
				ModTime:  hdr.ModTime,
			}, nil)
		}
		hdr.Typeflag = tar.TypeChar
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFSOCK:
		// As docker: a socket means nothing outside its process.
		return nil
	case unix.S_IFLNK:
		target, err := os.Readlink(full)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		return dw.write(hdr, nil)
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := dw.links[key]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				return dw.write(hdr, nil)
			}
			dw.links[key] = name
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		f, err := dw.root.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer f.Close()
		// A file that grew since the lstat would break the tar: read
		// exactly the size the header says.
		return dw.write(hdr, io.LimitReader(f, st.Size))
	default:
		return fmt.Errorf("%s: unsupported file type %o", name, st.Mode&unix.S_IFMT)
	}
	hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	return dw.write(hdr, nil)
}

// readXattrs returns the extended attributes of the file at p as PAX
// records, without overlayfs's own, and whether it is an opaque directory.
func readXattrs(p string) (map[string]string, bool, error) {
	names, err := listXattrs(p)
	if err != nil {
		return nil, false, err
	}
	var out map[string]string
	opaque := false
	for _, n := range names {
		v, err := getXattr(p, n)
		if errors.Is(err, unix.ENODATA) {
			continue
		} else if err != nil {
			return nil, false, fmt.Errorf("getxattr %s: %w", n, err)
		}
		if n == opaqueXattr {
			opaque = string(v) == "y"
			continue
		}
		if strings.HasPrefix(n, overlayXattrs) || strings.HasPrefix(n, "user.overlay.") {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[paxXattrPrefix+n] = string(v)
	}
	return out, opaque, nil
}

func listXattrs(p string) ([]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("listxattr: %w", err)
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(p, buf); err != nil {
		return nil, fmt.Errorf("listxattr: %w", err)
	}
	var names []string
	for n := range strings.SplitSeq(string(buf[:size]), "\x00") {
		if n != "" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

func getXattr(p, name string) ([]byte, error) {
	size, err := unix.Lgetxattr(p, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	size, err = unix.Lgetxattr(p, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:size], nil
}

func timeOf(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec).UTC() }
