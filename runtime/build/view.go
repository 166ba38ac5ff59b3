package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// fsView reads a root filesystem made of layers, as overlayfs would show it
// merged, without mounting anything: the layers of a stage or an image (for
// COPY --from, for the owner of --chown, for the destination of a COPY), or
// the build context as a view of one layer. Every read goes through an
// os.Root of its layer, and symlinks are resolved here, one component at a
// time, as if the view's root were "/": nothing leads out of the layers.
type fsView struct {
	// layers are the layer directories, highest first.
	layers []*os.Root
	paths  []string
	// whiteouts: the layers are in overlay form (0/0 character devices
	// delete, opaque directories hide what is below). The context is not.
	whiteouts bool
	// exclude hides paths (relative, slash-separated): .dockerignore.
	exclude func(rel string) exclusion
}

// newLayerView is the view of layer directories given lowest first, as an
// image lists them.
func newLayerView(dirs []string) (*fsView, error) {
	v := &fsView{whiteouts: true}
	for i := len(dirs) - 1; i >= 0; i-- {
		r, err := os.OpenRoot(dirs[i])
		if err != nil {
			v.close()
			return nil, err
		}
		v.layers = append(v.layers, r)
		v.paths = append(v.paths, dirs[i])
	}
	return v, nil
}

func (v *fsView) close() {
	for _, r := range v.layers {
		r.Close()
	}
	v.layers = nil
}

// node is one file of the view, as its highest layer has it.
type node struct {
	// rel is its path in the view, without symlinks ("." for the root).
	rel   string
	layer int
	st    *syscall.Stat_t
	// below are, for a directory, the layers whose directory of that path
	// merge into it, highest first (layer among them).
	below []int
	// hidden: a directory that .dockerignore excludes, visible only for
	// what a "!" pattern takes back below it.
	hidden bool
}

func (n *node) isDir() bool     { return n.st.Mode&unix.S_IFMT == unix.S_IFDIR }
func (n *node) isSymlink() bool { return n.st.Mode&unix.S_IFMT == unix.S_IFLNK }
func (n *node) isRegular() bool { return n.st.Mode&unix.S_IFMT == unix.S_IFREG }

func (v *fsView) root() *node {
	n := &node{rel: ".", st: &syscall.Stat_t{Mode: unix.S_IFDIR | 0o755}}
	for i := range v.layers {
		n.below = append(n.below, i)
	}
	if len(v.layers) > 0 {
		if st, err := v.lstat(0, "."); err == nil {
			n.st = st
		}
	}
	return n
}

func (v *fsView) lstat(layer int, rel string) (*syscall.Stat_t, error) {
	fi, err := v.layers[layer].Lstat(rel)
	if err != nil {
		return nil, err
	}
	return fi.Sys().(*syscall.Stat_t), nil
}

func isWhiteout(st *syscall.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// opaque reports whether the directory rel of layer hides the layers below.
func (v *fsView) opaque(layer int, rel string) bool {
	buf := make([]byte, 1)
	n, err := unix.Lgetxattr(filepath.Join(v.paths[layer], rel), "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// child finds name in the directory dir; nil when it is not there.
func (v *fsView) child(dir *node, name string) (*node, error) {
	rel := path.Join(dir.rel, name)
	ex := included
	if v.exclude != nil {
		if ex = v.exclude(rel); ex == excluded {
			return nil, nil
		}
	}
	var n *node
	for _, l := range dir.below {
		st, err := v.lstat(l, rel)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			continue
		} else if err != nil {
			return nil, err
		}
		if v.whiteouts && isWhiteout(st) {
			break
		}
		if n == nil {
			n = &node{rel: rel, layer: l, st: st}
			if !n.isDir() {
				break
			}
		} else if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			break
		}
		n.below = append(n.below, l)
		if v.whiteouts && v.opaque(l, rel) {
			break
		}
	}
	if n != nil && ex == traversed {
		if !n.isDir() {
			return nil, nil
		}
		n.hidden = true
	}
	return n, nil
}

// errNotDir: a path goes through a file that is not a directory.
var errNotDir = errors.New("not a directory")

// maxSymlinks bounds the symlinks one resolution follows, as the kernel's
// ELOOP.
const maxSymlinks = 40

// resolve finds p (slash-separated; absolute or not, it starts at the
// view's root) following symlinks, the last one too when follow is set.
// It returns the node, or nil and the path it would have when it is not
// there. ".." never goes above the root.
func (v *fsView) resolve(p string, follow bool) (*node, string, error) {
	cur := v.root()
	parts := splitPath(p)
	hops := 0
	for len(parts) > 0 {
		name := parts[0]
		parts = parts[1:]
		switch name {
		case ".":
			continue
		case "..":
			var err error
			if cur, err = v.parent(cur); err != nil {
				return nil, "", err
			}
			continue
		}
		if !cur.isDir() {
			return nil, "", fmt.Errorf("%s: %w", cur.rel, errNotDir)
		}
		n, err := v.child(cur, name)
		if err != nil {
			return nil, "", err
		}
		if n == nil {
			return nil, path.Join(append([]string{cur.rel, name}, parts...)...), nil
		}
		if n.isSymlink() && (len(parts) > 0 || follow) {
			if hops++; hops > maxSymlinks {
				return nil, "", fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			target, err := v.layers[n.layer].Readlink(n.rel)
			if err != nil {
				return nil, "", err
			}
			if strings.HasPrefix(target, "/") {
				cur = v.root()
			}
			parts = append(splitPath(target), parts...)
			continue
		}
		cur = n
	}
	return cur, cur.rel, nil
}

// parent is the directory above n, found again from the root.
func (v *fsView) parent(n *node) (*node, error) {
	if n.rel == "." {
		return n, nil
	}
	p, _, err := v.resolve(path.Dir(n.rel), true)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("%s: vanished", path.Dir(n.rel))
	}
	return p, nil
}

func splitPath(p string) []string {
	var out []string
	for s := range strings.SplitSeq(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// list returns the entries of the directory dir, merged, sorted by name.
func (v *fsView) list(dir *node) ([]*node, error) {
	seen := map[string]bool{}
	var names []string
	for _, l := range dir.below {
		f, err := v.layers[l].Open(dir.rel)
		if err != nil {
			return nil, err
		}
		entries, err := f.ReadDir(-1)
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !seen[e.Name()] {
				seen[e.Name()] = true
				names = append(names, e.Name())
			}
		}
	}
	slices.Sort(names)
	var out []*node
	for _, name := range names {
		n, err := v.child(dir, name)
		if err != nil {
			return nil, err
		}
		if n != nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// open opens the regular file n for reading.
func (v *fsView) open(n *node) (*os.File, error) {
	return v.layers[n.layer].OpenFile(n.rel, os.O_RDONLY|unix.O_NOFOLLOW, 0)
}

func (v *fsView) readlink(n *node) (string, error) {
	return v.layers[n.layer].Readlink(n.rel)
}

// readFile reads the regular file at p (symlinks followed); nil when there
// is none.
func (v *fsView) readFile(p string) ([]byte, error) {
	n, _, err := v.resolve(p, true)
	if err != nil || n == nil || !n.isRegular() {
		return nil, err
	}
	f, err := v.open(n)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, st.Size())
	_, err = f.ReadAt(buf, 0)
	return buf, err
}
