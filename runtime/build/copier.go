package build

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// copier writes the sources of one step into its folder of changes.
type copier struct {
	ctx   context.Context
	diff  *diffDir
	image *fsView
	owner *owner
	chmod *uint32
	// fromContext: the files come from the build context, and are root's
	// unless --chown says otherwise; from a stage or an image they keep
	// their owner.
	fromContext bool
}

// metaFor is the metadata a copied file gets.
func (c *copier) metaFor(st *syscall.Stat_t) meta {
	m := metaOf(st)
	if c.fromContext {
		m.uid, m.gid = 0, 0
	}
	if c.owner != nil {
		m.uid, m.gid = c.owner.uid, c.owner.gid
	}
	if c.chmod != nil {
		m.mode = *c.chmod
	}
	return m
}

// copy copies one source to dest: a directory's content into dest, a file
// into dest when it is a directory (destIsDir), else as dest.
func (c *copier) copy(s copySource, dest string, destIsDir bool) error {
	target := dest
	isDirSource := s.node != nil && s.node.isDir()
	if !isDirSource && (destIsDir || s.archive) {
		if s.archive {
			// A tarball's content goes into dest, a directory.
			target = dest
		} else {
			target = path.Join(dest, s.base)
		}
	}
	real, err := c.realPath(target, isDirSource || s.archive)
	if err != nil {
		return err
	}
	switch {
	case s.content != nil:
		m := meta{mode: 0o644, mtime: now()}
		if c.owner != nil {
			m.uid, m.gid = c.owner.uid, c.owner.gid
		}
		if c.chmod != nil {
			m.mode = *c.chmod
		}
		return c.diff.writeFile(real, strings.NewReader(*s.content), m)
	case s.download != nil:
		return c.copyDownload(s.download, real)
	case s.archive:
		return c.extract(s, real)
	case isDirSource:
		m := c.metaFor(s.node.st)
		if err := c.diff.mkdirAll(real, &m); err != nil {
			return err
		}
		return c.copyTree(s.view, s.node, real)
	}
	return c.copyNode(s.view, s.node, real)
}

// realPath is where target is in the image: its parent's symlinks
// resolved (as docker follows /var/run → /run), and target's own too
// when it is a directory of the image that a directory is copied into.
func (c *copier) realPath(target string, dir bool) (string, error) {
	n, p, err := c.image.resolve(target, dir)
	if err != nil {
		return "", fmt.Errorf("destination %s: %w", target, err)
	}
	if n != nil && !dir && n.isSymlink() {
		// A file copied over a symlink replaces the link itself.
		parent, pp, err := c.image.resolve(path.Dir(target), true)
		if err != nil {
			return "", fmt.Errorf("destination %s: %w", target, err)
		}
		if parent != nil {
			pp = parent.rel
		}
		return path.Join(pp, path.Base(target)), nil
	}
	if n != nil {
		return n.rel, nil
	}
	return p, nil
}

// copyTree copies what is below the directory n to the directory dst.
func (c *copier) copyTree(v *fsView, n *node, dst string) error {
	children, err := v.list(n)
	if err != nil {
		return fmt.Errorf("%s: %w", n.rel, err)
	}
	for _, ch := range children {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		name := path.Base(ch.rel)
		if ch.isDir() {
			// A directory of the image reached through a symlink takes
			// the copy where the link leads.
			sub, err := c.realPath(path.Join(dst, name), true)
			if err != nil {
				return err
			}
			if !ch.hidden {
				m := c.metaFor(ch.st)
				if err := c.diff.mkdirAll(sub, &m); err != nil {
					return err
				}
			}
			if err := c.copyTree(v, ch, sub); err != nil {
				return err
			}
			continue
		}
		if err := c.copyNode(v, ch, path.Join(dst, name)); err != nil {
			return err
		}
	}
	return nil
}

// copyNode copies one file that is not a directory.
func (c *copier) copyNode(v *fsView, n *node, dst string) error {
	m := c.metaFor(n.st)
	switch n.st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		f, err := v.open(n)
		if err != nil {
			return err
		}
		defer f.Close()
		return c.diff.writeFile(dst, ctxReader{c.ctx, io.LimitReader(f, n.st.Size)}, m)
	case unix.S_IFLNK:
		target, err := v.readlink(n)
		if err != nil {
			return err
		}
		return c.diff.symlink(dst, target, m)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if c.fromContext {
			return nil
		}
		return c.diff.mknod(dst, n.st.Mode, n.st.Rdev, m)
	}
	// Sockets: as docker, nothing to copy.
	return nil
}

// ctxReader stops a long copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
