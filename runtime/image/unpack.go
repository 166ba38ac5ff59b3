package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// unpackedLayer is a layer unpacked into a folder that is not yet in layers/.
type unpackedLayer struct {
	dir    string
	diffID v1.Hash
	size   int64
}

// unpackBlob unpacks the layer blob at blob into the new folder dst, as an
// overlay lower directory. The uncompressed stream must hash to want, unless
// want is zero (Import learns the diff ID here). On error dst is removed.
// name is the blob's digest, for messages.
func unpackBlob(ctx context.Context, blob, dst string, want v1.Hash, name v1.Hash) (_ unpackedLayer, err error) {
	f, err := os.Open(blob)
	if err != nil {
		return unpackedLayer{}, fmt.Errorf("unpack layer %s: %w", name, err)
	}
	defer f.Close()
	tarStream, _, err := decompress(f)
	if err != nil {
		return unpackedLayer{}, fmt.Errorf("unpack layer %s: %w", name, err)
	}
	defer tarStream.Close()
	if err := os.Mkdir(dst, 0o755); err != nil {
		return unpackedLayer{}, fmt.Errorf("unpack layer %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dst)
		}
	}()
	// Mkdir's mode went through the umask.
	if err := os.Chmod(dst, 0o755); err != nil {
		return unpackedLayer{}, fmt.Errorf("unpack layer %s: %w", name, err)
	}
	h := sha256.New()
	size, err := extract(ctx, io.TeeReader(tarStream, h), dst)
	if err != nil {
		return unpackedLayer{}, fmt.Errorf("unpack layer %s: %w", name, err)
	}
	// What follows the end of the tar belongs to the diff ID too, and gzip
	// checks its CRC only at the end of the stream.
	if _, err := io.Copy(h, tarStream); err != nil {
		return unpackedLayer{}, fmt.Errorf("%w: unpack layer %s: %w", ErrBadArchive, name, err)
	}
	diffID := sha256Hash(h.Sum(nil))
	if want != (v1.Hash{}) && diffID != want {
		return unpackedLayer{}, fmt.Errorf("%w: layer %s: its content hashes to %s, not to the diff ID %s of the image config", ErrBadArchive, name, diffID, want)
	}
	return unpackedLayer{dir: dst, diffID: diffID, size: size}, nil
}

// extractor writes the entries of one layer tarball under root. Every write
// goes through a directory opened with os.Root (which cannot leave the
// layer) and then a *at syscall on a single path element that is not
// followed if it is a symlink; on top of that, entries below a symlink of the
// layer are refused, so a write never passes through a symlink at all.
type extractor struct {
	root *os.Root
	// symlinks are the entries of the layer that are symlinks.
	symlinks map[string]bool
	// dirs are the directories, whose metadata is set at the end (their
	// mtime would change as entries are added; their mode could forbid it);
	// nil for one a later entry replaced. dirSeen indexes them by name.
	dirs    []*tar.Header
	dirSeen map[string]int
	parent  openDir
	buf     []byte
	root0   bool // running as root: chown and mknod are possible
	size    int64
}

// openDir caches the directory of the last entry: tar entries come grouped
// by directory.
type openDir struct {
	name string
	f    *os.File
}

// extract unpacks the tar stream r under dir and returns the sum of the
// sizes of its regular files.
func extract(ctx context.Context, r io.Reader, dir string) (int64, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	x := &extractor{
		root:     root,
		symlinks: map[string]bool{},
		dirSeen:  map[string]int{},
		buf:      make([]byte, 1<<20),
		root0:    os.Geteuid() == 0,
	}
	defer x.close()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return 0, fmt.Errorf("%w: read tar: %w", ErrBadArchive, err)
		}
		if err := x.entry(tr, hdr); err != nil {
			return 0, err
		}
	}
	if err := x.finishDirs(); err != nil {
		return 0, err
	}
	return x.size, nil
}

func (x *extractor) close() {
	x.dropParent()
	x.root.Close()
}

func (x *extractor) dropParent() {
	if x.parent.f != nil {
		x.parent.f.Close()
	}
	x.parent = openDir{}
}

// cleanName checks the name of an entry (or of a hard link's target) and
// returns it relative to the layer's root.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute path")
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", errors.New("path escapes the layer")
	}
	return c, nil
}

// belowSymlink returns the symlink of the layer that name would be reached
// through, if any.
func (x *extractor) belowSymlink(name string) (string, bool) {
	for p := path.Dir(name); p != "." && p != "/"; p = path.Dir(p) {
		if x.symlinks[p] {
			return p, true
		}
	}
	return "", false
}

func badEntry(name string, err error) error {
	return fmt.Errorf("%w: entry %q: %w", ErrBadArchive, name, err)
}

func (x *extractor) entry(tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return badEntry(hdr.Name, err)
	}
	if link, ok := x.belowSymlink(name); ok {
		return badEntry(hdr.Name, fmt.Errorf("would be written through the symlink %q", link))
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return badEntry(hdr.Name, errors.New("the layer's root must be a directory"))
		}
		x.deferDir(".", hdr)
		return nil
	}
	parent, base := path.Dir(name), path.Base(name)

	if strings.HasPrefix(base, whiteoutPrefix) {
		return x.whiteout(hdr, parent, base)
	}

	dir, err := x.openParent(parent)
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	keep, err := x.clear(dir, name, base, hdr.Typeflag == tar.TypeDir)
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	// clear may have closed the cached directory.
	if dir, err = x.openParent(parent); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	fd := int(dir.Fd())

	switch hdr.Typeflag {
	case tar.TypeDir:
		if !keep {
			if err := unix.Mkdirat(fd, base, 0o700); err != nil {
				return fmt.Errorf("entry %q: mkdirat: %w", hdr.Name, err)
			}
		}
		x.deferDir(name, hdr)
		return nil
	case tar.TypeReg, tar.TypeGNUSparse:
		// archive/tar reads old-style regular files as TypeReg, and
		// sparse ones with their holes as zeros.
		return x.regular(tr, hdr, fd, base)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, fd, base); err != nil {
			return fmt.Errorf("entry %q: symlinkat: %w", hdr.Name, err)
		}
		x.symlinks[name] = true
	case tar.TypeLink:
		return x.hardlink(hdr, name, fd, base)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode |= unix.S_IFCHR
		case tar.TypeBlock:
			mode |= unix.S_IFBLK
		default:
			mode |= unix.S_IFIFO
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(fd, base, mode, int(dev)); err != nil {
			return fmt.Errorf("entry %q: mknodat: %w", hdr.Name, err)
		}
	default:
		return badEntry(hdr.Name, fmt.Errorf("unsupported entry type %q", hdr.Typeflag))
	}
	if err := x.setMeta(hdr, fd, base, -1); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	return nil
}

// openParent opens the directory name of the layer, making it (and its
// parents, as 0755) when the tarball did not list it before its entries.
func (x *extractor) openParent(name string) (*os.File, error) {
	if x.parent.f != nil && x.parent.name == name {
		return x.parent.f, nil
	}
	x.dropParent()
	f, err := x.root.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		if err := x.root.MkdirAll(name, 0o755); err != nil {
			return nil, err
		}
		f, err = x.root.Open(name)
	}
	if err != nil {
		return nil, err
	}
	x.parent = openDir{name: name, f: f}
	return f, nil
}

// clear makes room for an entry: a later entry of the same name replaces an
// earlier one, except that a directory over a directory merges. It returns
// whether an existing directory is kept.
func (x *extractor) clear(dir *os.File, name, base string, isDir bool) (keep bool, err error) {
	var st unix.Stat_t
	err = unix.Fstatat(int(dir.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("fstatat: %w", err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if isDir {
			return true, nil
		}
		x.dropParent()
		if err := x.root.RemoveAll(name); err != nil {
			return false, err
		}
		for l := range x.symlinks {
			if strings.HasPrefix(l, name+"/") {
				delete(x.symlinks, l)
			}
		}
		for d, i := range x.dirSeen {
			if d == name || strings.HasPrefix(d, name+"/") {
				x.dirs[i] = nil
				delete(x.dirSeen, d)
			}
		}
		return false, nil
	}
	delete(x.symlinks, name)
	if err := unix.Unlinkat(int(dir.Fd()), base, 0); err != nil {
		return false, fmt.Errorf("unlinkat: %w", err)
	}
	return false, nil
}

func (x *extractor) regular(tr *tar.Reader, hdr *tar.Header, dirfd int, base string) (err error) {
	fd, err := unix.Openat(dirfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("entry %q: openat: %w", hdr.Name, err)
	}
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("entry %q: %w", hdr.Name, cerr)
		}
	}()
	for {
		n, rerr := tr.Read(x.buf)
		if n > 0 {
			if _, err := f.Write(x.buf[:n]); err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		} else if rerr != nil {
			return badEntry(hdr.Name, rerr)
		}
	}
	x.size += hdr.Size
	if err := x.setMeta(hdr, dirfd, base, fd); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	return nil
}

func (x *extractor) hardlink(hdr *tar.Header, name string, fd int, base string) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return badEntry(hdr.Name, fmt.Errorf("hard link to %q: %w", hdr.Linkname, err))
	}
	if target == "." {
		return badEntry(hdr.Name, errors.New("hard link to the layer's root"))
	}
	if link, ok := x.belowSymlink(target); ok {
		return badEntry(hdr.Name, fmt.Errorf("hard link to %q goes through the symlink %q", hdr.Linkname, link))
	}
	if target == name {
		return nil
	}
	tdir, err := x.root.Open(path.Dir(target))
	if err != nil {
		return badEntry(hdr.Name, fmt.Errorf("hard link to %q: %w", hdr.Linkname, err))
	}
	defer tdir.Close()
	// flags 0: a link to a symlink is a link to the symlink itself.
	if err := unix.Linkat(int(tdir.Fd()), path.Base(target), fd, base, 0); errors.Is(err, unix.ENOENT) {
		return badEntry(hdr.Name, fmt.Errorf("hard link to %q, which is not in the layer", hdr.Linkname))
	} else if err != nil {
		return fmt.Errorf("entry %q: linkat %q: %w", hdr.Name, hdr.Linkname, err)
	}
	if x.symlinks[target] {
		x.symlinks[name] = true
	}
	return nil
}

func (x *extractor) deferDir(name string, hdr *tar.Header) {
	if i, ok := x.dirSeen[name]; ok {
		x.dirs[i] = hdr
		return
	}
	x.dirSeen[name] = len(x.dirs)
	x.dirs = append(x.dirs, hdr)
}

// finishDirs sets the metadata of the directories, deepest last seen first.
func (x *extractor) finishDirs() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		hdr := x.dirs[i]
		if hdr == nil {
			// Replaced by a later entry.
			continue
		}
		name, _ := cleanName(hdr.Name)
		parent, base := path.Dir(name), path.Base(name)
		if name == "." {
			parent, base = ".", "."
		}
		dir, err := x.openParent(parent)
		if err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		fd, err := unix.Openat(int(dir.Fd()), base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("entry %q: openat: %w", hdr.Name, err)
		}
		err = x.setMeta(hdr, int(dir.Fd()), base, fd)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	return nil
}
