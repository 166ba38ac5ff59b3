package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Whiteouts as image layers carry them (the AUFS convention of the OCI spec)
// and as overlayfs wants them in a lower directory.
const (
	whiteoutPrefix = ".wh."
	// whiteoutMeta prefixes AUFS's own files, which mean nothing to overlayfs.
	whiteoutMeta = ".wh..wh."
	// opaqueMarker in a directory hides the directory's lower contents.
	opaqueMarker = ".wh..wh..opq"
	opaqueXattr  = "trusted.overlay.opaque"
	// overlayXattrs are overlayfs's own attributes: only the whiteout
	// markers above may set them, never an image's PAX records.
	overlayXattrs  = "trusted.overlay."
	paxXattrPrefix = "SCHILY.xattr."
)

// whiteout turns .wh.NAME into a 0/0 character device NAME and the opaque
// marker into the xattr trusted.overlay.opaque=y on its directory.
func (x *extractor) whiteout(hdr *tar.Header, parent, base string) error {
	dir, err := x.openParent(parent)
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	if base == opaqueMarker {
		if err := unix.Fsetxattr(int(dir.Fd()), opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("entry %q: mark %q opaque: setxattr %s: %w", hdr.Name, parent, opaqueXattr, err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return badEntry(hdr.Name, errors.New("whiteout of no name"))
	}
	name := path.Join(parent, target)
	if _, err := x.clear(dir, name, target, false); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	if dir, err = x.openParent(parent); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	fd := int(dir.Fd())
	if err := unix.Mknodat(fd, target, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("entry %q: whiteout %q: mknodat: %w", hdr.Name, name, err)
	}
	if x.root0 {
		if err := unix.Fchownat(fd, target, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("entry %q: whiteout %q: fchownat: %w", hdr.Name, name, err)
		}
	}
	return nil
}

// setMeta gives the entry base of the directory dirfd its owner, xattrs, mode
// and times, in that order: chown clears setuid bits and file capabilities.
// fd is the entry itself when it is open (regular files, directories), or -1.
func (x *extractor) setMeta(hdr *tar.Header, dirfd int, base string, fd int) error {
	// Without root no chown is possible; an unprivileged unpack (tests,
	// tools) keeps the files as the caller's.
	if x.root0 {
		var err error
		if fd >= 0 {
			err = unix.Fchown(fd, hdr.Uid, hdr.Gid)
		} else {
			err = unix.Fchownat(dirfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	if err := setXattrs(hdr, dirfd, base, fd); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeSymlink {
		mode := uint32(hdr.Mode & 0o7777)
		var err error
		if fd >= 0 {
			err = unix.Fchmod(fd, mode)
		} else {
			err = unix.Fchmodat(dirfd, base, mode, 0)
		}
		if err != nil {
			return fmt.Errorf("chmod %o: %w", mode, err)
		}
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
	if err := unix.UtimesNanoAt(dirfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("utimensat: %w", err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// setXattrs sets the extended attributes of the entry's PAX records.
func setXattrs(hdr *tar.Header, dirfd int, base string, fd int) error {
	for k, v := range hdr.PAXRecords {
		key, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok || strings.HasPrefix(key, overlayXattrs) {
			continue
		}
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, key, []byte(v), 0)
		} else {
			// A symlink, device or fifo cannot be opened to write its
			// attributes: name it through its (already open) directory.
			err = unix.Lsetxattr("/proc/self/fd/"+strconv.Itoa(dirfd)+"/"+base, key, []byte(v), 0)
		}
		// As docker: a filesystem without xattrs, or an unprivileged
		// unpack, loses them rather than the whole image.
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			continue
		} else if err != nil {
			return fmt.Errorf("setxattr %s: %w", key, err)
		}
	}
	return nil
}
