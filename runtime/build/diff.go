package build

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// meta is the owner, mode and time a file gets in a layer.
type meta struct {
	uid, gid int
	// mode is the permission bits with setuid, setgid and sticky.
	mode  uint32
	mtime time.Time
}

func metaOf(st *syscall.Stat_t) meta {
	return meta{uid: int(st.Uid), gid: int(st.Gid), mode: st.Mode & 0o7777, mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
}

// diffDir is the folder of a COPY or ADD step's changes, in overlay form,
// as the layer will hold them. Every write goes through an os.Root of the
// folder: a symlink the step itself wrote never sends a later write out.
// Paths are relative to the image's root, slash-separated, and real: the
// caller resolved the image's symlinks in them (dest).
type diffDir struct {
	dir  string
	root *os.Root
	// image is the stage's root as it was before the step: the directories
	// the step writes into keep its owner and mode.
	image *fsView
	// newDir is the metadata of a directory the step makes that neither
	// the image nor the source has (a missing parent of the destination).
	newDir meta
	// dirs are the directories made, with their metadata, set at the end
	// (writing into a directory changes its time; its mode could forbid
	// writing).
	dirs map[string]meta
}

func newDiffDir(dir string, image *fsView, newDir meta) (*diffDir, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &diffDir{dir: dir, root: root, image: image, newDir: newDir, dirs: map[string]meta{}}, nil
}

func (d *diffDir) close() { d.root.Close() }

// mkdirAll makes the directory rel and its parents. A directory the image
// has keeps its metadata; one it lacks gets m for rel itself (when m is
// set) and the step's newDir for the parents.
func (d *diffDir) mkdirAll(rel string, m *meta) error {
	rel = path.Clean(rel)
	if rel == "." || rel == "/" {
		return nil
	}
	prev, made := d.dirs[rel]
	if made && m == nil {
		return nil
	}
	if !made {
		if err := d.mkdirAll(path.Dir(rel), nil); err != nil {
			return err
		}
	}
	dm := d.newDir
	if made {
		dm = prev
	}
	if n, _, err := d.image.resolve(rel, false); err != nil {
		return err
	} else if n != nil && n.isDir() {
		dm = metaOf(n.st)
	} else if m != nil {
		dm = *m
	}
	if !made {
		fi, err := d.root.Lstat(rel)
		switch {
		case err == nil && fi.IsDir():
		case err == nil:
			// A file this step wrote, replaced by a directory.
			if err := d.root.Remove(rel); err != nil {
				return err
			}
			fallthrough
		case errors.Is(err, fs.ErrNotExist):
			if err := d.root.Mkdir(rel, 0o700); err != nil {
				return err
			}
		default:
			return err
		}
	}
	d.dirs[rel] = dm
	return nil
}

// clear removes what the step wrote at rel before, unless it is a
// directory and keepDir is set.
func (d *diffDir) clear(rel string, keepDir bool) error {
	fi, err := d.root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if fi.IsDir() {
		if keepDir {
			return nil
		}
		for d2 := range d.dirs {
			if d2 == rel || strings.HasPrefix(d2, rel+"/") {
				delete(d.dirs, d2)
			}
		}
		return d.root.RemoveAll(rel)
	}
	return d.root.Remove(rel)
}

// writeFile writes a regular file at rel from r.
func (d *diffDir) writeFile(rel string, r io.Reader, m meta) (err error) {
	if err := d.mkdirAll(path.Dir(rel), nil); err != nil {
		return err
	}
	if err := d.clear(rel, false); err != nil {
		return err
	}
	f, err := d.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	return d.setMeta(rel, m, false)
}

func (d *diffDir) symlink(rel, target string, m meta) error {
	if err := d.mkdirAll(path.Dir(rel), nil); err != nil {
		return err
	}
	if err := d.clear(rel, false); err != nil {
		return err
	}
	if err := d.root.Symlink(target, rel); err != nil {
		return err
	}
	return d.setMeta(rel, m, true)
}

// hardlink links rel to target, a file this step wrote.
func (d *diffDir) hardlink(rel, target string) error {
	if err := d.mkdirAll(path.Dir(rel), nil); err != nil {
		return err
	}
	if err := d.clear(rel, false); err != nil {
		return err
	}
	return d.root.Link(target, rel)
}

// mknod makes a device or a FIFO (mode holds its type).
func (d *diffDir) mknod(rel string, mode uint32, dev uint64, m meta) error {
	if err := d.mkdirAll(path.Dir(rel), nil); err != nil {
		return err
	}
	if err := d.clear(rel, false); err != nil {
		return err
	}
	parent, err := d.root.Open(path.Dir(rel))
	if err != nil {
		return err
	}
	defer parent.Close()
	if err := unix.Mknodat(int(parent.Fd()), path.Base(rel), mode&unix.S_IFMT|0o600, int(dev)); err != nil {
		return fmt.Errorf("mknod %s: %w", rel, err)
	}
	return d.setMeta(rel, m, false)
}

// setMeta gives the entry rel its owner, then mode (chown clears setuid
// bits), then times; a symlink's are its own, never its target's.
func (d *diffDir) setMeta(rel string, m meta, isLink bool) error {
	parent, err := d.root.Open(path.Dir(rel))
	if err != nil {
		return err
	}
	defer parent.Close()
	fd, base := int(parent.Fd()), path.Base(rel)
	if rel == "." {
		base = "."
	}
	if err := unix.Fchownat(fd, base, m.uid, m.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %s: %w", rel, err)
	}
	if !isLink {
		if err := unix.Fchmodat(fd, base, m.mode, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", rel, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(m.mtime.UnixNano()), unix.NsecToTimespec(m.mtime.UnixNano())}
	if err := unix.UtimesNanoAt(fd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("utimes %s: %w", rel, err)
	}
	return nil
}

// finish gives the directories their metadata, deepest first.
func (d *diffDir) finish() error {
	dirs := make([]string, 0, len(d.dirs))
	for rel := range d.dirs {
		dirs = append(dirs, rel)
	}
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, rel := range dirs {
		if err := d.setMeta(rel, d.dirs[rel], false); err != nil {
			return err
		}
	}
	return nil
}
