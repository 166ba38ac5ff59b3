package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// copyUp fills an empty volume directory with what the image holds at the
// mount target, as docker does the first time a named volume is mounted:
// a volume on /var/lib/postgresql/data starts with the image's files, modes
// and owners, not empty. A volume that holds anything is left alone, so the
// copy happens once in the volume's life.
//
// The image side is walked through file descriptors only (openat with
// O_NOFOLLOW, fstatat without following): a symlink in the image is copied as
// a symlink and never followed out of the root.
func (r *rootfs) copyUp(source, target string) error {
	dst, err := os.OpenFile(source, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer dst.Close()
	if _, err := dst.Readdirnames(1); !errors.Is(err, io.EOF) {
		return err // nil: not empty, nothing to do
	}
	h, err := pathrs.OpenatInRoot(r.fd, target)
	if errors.Is(err, unix.ENOENT) {
		return nil // the image has nothing there
	} else if err != nil {
		return err
	}
	defer h.Close()
	src, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if errors.Is(err, unix.ENOTDIR) {
		return nil // a file there: the mount will fail and say so
	} else if err != nil {
		return err
	}
	defer src.Close()

	c := copier{dstRoot: int(dst.Fd()), links: map[[2]uint64]string{}}
	if err := c.copyDir(src, dst, "."); err != nil {
		return err
	}
	// The volume's root takes the owner and mode of the image's directory, so
	// a service running as a user can still write to its data directory.
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	if err := unix.Fchown(int(dst.Fd()), int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("fchown %s: %w", source, err)
	}
	if err := unix.Fchmod(int(dst.Fd()), st.Mode&0o7777); err != nil {
		return fmt.Errorf("fchmod %s: %w", source, err)
	}
	return nil
}

// copier copies one tree. Hard links inside the tree stay hard links.
type copier struct {
	dstRoot int
	links   map[[2]uint64]string // (dev, inode) of the source → first copy, relative to dstRoot
}

func (c *copier) copyDir(src, dst *os.File, rel string) error {
	entries, err := src.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("%s: read directory: %w", rel, err)
	}
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for _, e := range entries {
		name := e.Name()
		p := path.Join(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: fstatat: %w", p, err)
		}
		linked, err := c.copyEntry(sfd, dfd, name, p, &st)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if linked {
			continue
		}
		if err := setMetadata(dfd, name, &st); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// copyEntry copies one entry; linked is true when it became a hard link to
// an earlier copy, whose metadata is already set.
func (c *copier) copyEntry(sfd, dfd int, name, rel string, st *unix.Stat_t) (linked bool, _ error) {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return false, fmt.Errorf("mkdirat: %w", err)
		}
		sub, err := openAt(sfd, name, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return false, err
		}
		defer sub.Close()
		dsub, err := openAt(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return false, err
		}
		defer dsub.Close()
		return false, c.copyDir(sub, dsub, rel)
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := c.links[key]; ok {
				if err := unix.Linkat(c.dstRoot, first, dfd, name, 0); err != nil {
					return false, fmt.Errorf("linkat: %w", err)
				}
				return true, nil
			}
			c.links[key] = rel
		}
		return false, copyFile(sfd, dfd, name)
	case unix.S_IFLNK:
		target, err := readlinkAt(sfd, name)
		if err != nil {
			return false, err
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return false, fmt.Errorf("symlinkat: %w", err)
		}
		return false, nil
	default: // devices, FIFOs, sockets
		if err := unix.Mknodat(dfd, name, st.Mode, int(st.Rdev)); err != nil {
			return false, fmt.Errorf("mknodat: %w", err)
		}
		return false, nil
	}
}

func copyFile(sfd, dfd int, name string) error {
	in, err := openAt(sfd, name, unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer in.Close()
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("openat: %w", err)
	}
	out := os.NewFile(uintptr(fd), name)
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil { // copy_file_range where it can
		return fmt.Errorf("copy: %w", err)
	}
	return out.Close()
}

// setMetadata gives the copy the source's owner, mode and times. The owner
// comes first: chown clears the set-user-ID bit that chmod then restores.
func setMetadata(dfd int, name string, st *unix.Stat_t) error {
	if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("fchownat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK { // a symlink has no mode of its own
		if err := unix.Fchmodat(dfd, name, st.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("fchmodat: %w", err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("utimensat: %w", err)
	}
	return nil
}

// openAt opens name in the directory dirfd without following a symlink there.
func openAt(dirfd int, name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("openat: %w", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", fmt.Errorf("readlinkat: %w", err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}
