package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/sys/unix"
)

// copyRequest is a COPY or an ADD, expanded.
type copyRequest struct {
	name               string // "COPY" or "ADD"
	add                bool
	from, chown, chmod string
	src                instructions.SourcesAndDest
	link, parents      bool
	exclude            []string
	checksum           string
	unpack             *bool
}

// copySource is one thing a COPY or ADD copies.
type copySource struct {
	// spec is the source as written, for messages.
	spec string
	// A file or directory of view (the context, a stage, an image) …
	view *fsView
	node *node
	// … or a heredoc's content, or a file ADD downloaded.
	content  *string
	download *download
	// base is the name the source takes in a destination directory.
	base string
	// archive: ADD extracts this local tarball.
	archive bool
}

// copy runs a COPY or an ADD: what it copies, hashed, makes the cache key;
// on a miss, the files are written into a folder of changes that becomes
// the step's layer.
func (b *builder) copy(ctx context.Context, st *stage, r copyRequest, v *vertex) error {
	if r.parents {
		return fmt.Errorf("%w: %s --parents is not supported by berth", ErrDockerfile, r.name)
	}
	if len(r.exclude) > 0 {
		return fmt.Errorf("%w: %s --exclude is not supported by berth", ErrDockerfile, r.name)
	}
	chmod, err := parseChmod(r.chmod)
	if err != nil {
		return fmt.Errorf("%w: %s --chmod=%s: %w", ErrDockerfile, r.name, r.chmod, err)
	}
	view, fromID, err := b.copyView(ctx, st, r.from, v)
	if err != nil {
		return err
	}
	sources, err := b.copySources(ctx, view, r, v)
	if err != nil {
		return err
	}
	if len(sources) == 0 {
		return fmt.Errorf("%w: %s: no source files were specified", ErrSourceNotFound, r.name)
	}

	dest := r.src.DestPath
	destIsDir := strings.HasSuffix(dest, "/") || strings.HasSuffix(dest, "/.") || dest == "."
	if !path.IsAbs(dest) {
		dest = path.Join("/", st.cf.Config.WorkingDir, dest)
	}
	dest = path.Clean(dest)
	if len(sources) > 1 && !destIsDir {
		return fmt.Errorf("%w: when using %s with more than one source file, the destination must be a directory and end with a /", ErrDockerfile, r.name)
	}

	createdBy := r.createdBy(dest, destIsDir)
	extra := "from " + fromID
	if fromID == "" {
		h := sha256.New()
		for _, s := range sources {
			if err := hashSource(ctx, h, s); err != nil {
				return err
			}
		}
		extra = "content " + hex.EncodeToString(h.Sum(nil))
	}
	key := cacheKey(st.id, createdBy, extra)
	if ok, err := b.reuse(st, key, v); err != nil || ok {
		return err
	}

	image, err := b.view(st)
	if err != nil {
		return err
	}
	defer image.close()
	owner, err := resolveOwner(image, r.chown)
	if err != nil {
		return fmt.Errorf("%s --chown=%s: %w", r.name, r.chown, err)
	}
	work, err := b.workDir()
	if err != nil {
		return err
	}
	newDir := meta{mode: 0o755, mtime: now()}
	if owner != nil {
		newDir.uid, newDir.gid = owner.uid, owner.gid
	}
	diff, err := newDiffDir(work.Path("copy"), image, newDir)
	if err != nil {
		return err
	}
	defer diff.close()
	c := &copier{ctx: ctx, diff: diff, image: image, owner: owner, chmod: chmod, fromContext: r.from == ""}
	if n, _, err := image.resolve(dest, true); err != nil {
		return fmt.Errorf("destination %s: %w", dest, err)
	} else if n != nil && n.isDir() {
		destIsDir = true
	}
	for _, s := range sources {
		if err := c.copy(s, dest, destIsDir); err != nil {
			return fmt.Errorf("%s %s: %w", r.name, s.spec, err)
		}
	}
	if err := diff.finish(); err != nil {
		return err
	}
	if err := b.commit(ctx, st, key, st.cf.DeepCopy(), diff.dir, createdBy); err != nil {
		return err
	}
	v.done()
	return nil
}

// createdBy is the step's history line, which its cache key names too.
func (r copyRequest) createdBy(dest string, destIsDir bool) string {
	var words []string
	words = append(words, r.name)
	for _, f := range [][2]string{{"from", r.from}, {"chown", r.chown}, {"chmod", r.chmod}, {"checksum", r.checksum}} {
		if f[1] != "" {
			words = append(words, "--"+f[0]+"="+f[1])
		}
	}
	if r.unpack != nil {
		words = append(words, "--unpack="+strconv.FormatBool(*r.unpack))
	}
	words = append(words, r.src.SourcePaths...)
	for _, c := range r.src.SourceContents {
		words = append(words, "<<"+c.Path)
	}
	if destIsDir && !strings.HasSuffix(dest, "/") {
		dest += "/"
	}
	return strings.Join(append(words, dest), " ")
}

// copyView is where a COPY reads from: the build context, or with --from a
// stage (built first) or an image. fromID, for --from, is the ID of what it
// names, which says all of its content.
func (b *builder) copyView(ctx context.Context, st *stage, from string, v *vertex) (view *fsView, fromID string, err error) {
	if from == "" {
		c, err := b.openContext()
		if err != nil {
			return nil, "", err
		}
		return c.view, "", nil
	}
	from, err = b.expandWord(from, st.env)
	if err != nil {
		return nil, "", fmt.Errorf("%w: --from: %w", ErrDockerfile, err)
	}
	var src *stage
	if i, ok := b.stageIndex(from); ok {
		if i >= st.index {
			return nil, "", fmt.Errorf("%w: --from=%s: the stage is not defined before this one", ErrUnknownStage, from)
		}
		if src, err = b.buildStage(ctx, i); err != nil {
			return nil, "", err
		}
	} else {
		img, err := b.baseImage(ctx, from, v)
		if err != nil {
			return nil, "", fmt.Errorf("%w: --from=%s: no stage of that name (stages: %s), nor an image: %w", ErrUnknownStage, from, b.stageNames(), err)
		}
		src = &stage{id: img.ID}
		if src.cf, err = b.store.ConfigFile(img.ID); err != nil {
			return nil, "", err
		}
	}
	if view, err = b.view(src); err != nil {
		return nil, "", err
	}
	b.onClose(view.close)
	return view, src.id, nil
}

// copySources finds every source of r in view: globs expanded, each path
// checked to stay inside; heredocs; and for ADD, URLs downloaded.
func (b *builder) copySources(ctx context.Context, view *fsView, r copyRequest, v *vertex) ([]copySource, error) {
	var out []copySource
	for _, c := range r.src.SourceContents {
		data := c.Data
		out = append(out, copySource{spec: "<<" + c.Path, content: &data, base: path.Base(c.Path)})
	}
	where := "the build context"
	if r.from != "" {
		where = "--from=" + r.from
	}
	for _, spec := range r.src.SourcePaths {
		if r.add && isURL(spec) {
			if r.from != "" {
				return nil, fmt.Errorf("%w: ADD --from is not allowed", ErrDockerfile)
			}
			d, err := b.download(ctx, spec, r.checksum, v)
			if err != nil {
				return nil, err
			}
			out = append(out, copySource{spec: spec, download: d, base: d.name})
			continue
		}
		if r.add && r.checksum != "" {
			return nil, fmt.Errorf("%w: ADD --checksum is only for URLs", ErrDockerfile)
		}
		clean := path.Clean(filepath.ToSlash(spec))
		if r.from == "" && (clean == ".." || strings.HasPrefix(clean, "../")) {
			return nil, fmt.Errorf("%w: %q", ErrOutsideContext, spec)
		}
		matches, err := glob(view, clean)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec, err)
		}
		if len(matches) == 0 {
			if hasMeta(clean) {
				return nil, fmt.Errorf("%w: no file in %s matches %q", ErrSourceNotFound, where, spec)
			}
			if r.from == "" && b.context.ignoreFile != "" {
				if _, err := b.context.view.layers[0].Lstat(clean); err == nil {
					return nil, fmt.Errorf("%w: %q is excluded by %s", ErrSourceNotFound, spec, displayName(b.context.dir, b.context.ignoreFile))
				}
			}
			return nil, fmt.Errorf("%w: %q not found in %s", ErrSourceNotFound, spec, where)
		}
		for _, m := range matches {
			s := copySource{spec: spec, view: view, node: m.node, base: path.Base(m.rel)}
			if r.add && m.node.isRegular() && (r.unpack == nil || *r.unpack) {
				if s.archive, err = isArchive(view, m.node); err != nil {
					return nil, fmt.Errorf("%s: %w", spec, err)
				}
			}
			out = append(out, s)
		}
	}
	return out, nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// hashSource feeds h with what a source holds that a copy of it depends
// on: names, types, modes, link targets and content; not times, nor the
// owners of the context (its files are copied as root's).
func hashSource(ctx context.Context, h hash.Hash, s copySource) error {
	fmt.Fprintf(h, "source %q base %q archive %t\x00", s.spec, s.base, s.archive)
	switch {
	case s.content != nil:
		fmt.Fprintf(h, "content %d %s\x00", len(*s.content), *s.content)
		return nil
	case s.download != nil:
		fmt.Fprintf(h, "download %s\x00", s.download.digest)
		return nil
	}
	return walk(s.view, s.node, ".", func(n *node, rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n.hidden {
			return nil
		}
		fmt.Fprintf(h, "%q %o %o", rel, n.st.Mode&unix.S_IFMT, n.st.Mode&0o7777)
		switch {
		case n.isSymlink():
			target, err := s.view.readlink(n)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, " -> %q", target)
		case n.isRegular():
			f, err := s.view.open(n)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, " %d ", n.st.Size)
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", n.rel, err)
			}
		case n.st.Mode&unix.S_IFMT == unix.S_IFCHR || n.st.Mode&unix.S_IFMT == unix.S_IFBLK:
			fmt.Fprintf(h, " dev %d", n.st.Rdev)
		}
		h.Write([]byte{0})
		return nil
	})
}

// walk calls fn for n and, for a directory, everything below it, in
// lexical order, with each one's path relative to n.
func walk(v *fsView, n *node, rel string, fn func(n *node, rel string) error) error {
	if err := fn(n, rel); err != nil {
		return err
	}
	if !n.isDir() {
		return nil
	}
	children, err := v.list(n)
	if err != nil {
		return fmt.Errorf("%s: %w", n.rel, err)
	}
	for _, c := range children {
		if err := walk(v, c, path.Join(rel, path.Base(c.rel)), fn); err != nil {
			return err
		}
	}
	return nil
}

// parseChmod reads --chmod: an octal mode.
func parseChmod(s string) (*uint32, error) {
	if s == "" {
		return nil, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return nil, errors.New("berth takes an octal mode (e.g. 0755)")
	}
	mode := uint32(m)
	return &mode, nil
}
