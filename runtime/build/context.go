package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// buildContext is the folder COPY and ADD read from, less what
// .dockerignore excludes.
type buildContext struct {
	dir  string
	view *fsView
	// ignoreFile is the .dockerignore in force, for messages; empty: none.
	ignoreFile string
}

// openContext opens the build context. The ignore file is the
// Dockerfile's own (Dockerfile.dockerignore next to it) when there is one,
// as BuildKit reads it, else .dockerignore at the context's root.
func (b *builder) openContext() (*buildContext, error) {
	if b.context != nil {
		return b.context, nil
	}
	dir, err := filepath.Abs(b.opts.ContextDir)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s: not a folder", dir)
	}
	var candidates []string
	if b.df.path != "" {
		candidates = append(candidates, b.df.path+".dockerignore")
	}
	candidates = append(candidates, filepath.Join(dir, ".dockerignore"))
	c := &buildContext{dir: dir}
	for _, p := range candidates {
		pm, err := readIgnoreFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		c.ignoreFile = p
		if pm != nil {
			c.view = &fsView{exclude: excluder(pm)}
		}
		break
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if c.view == nil {
		c.view = &fsView{}
	}
	c.view.layers, c.view.paths = []*os.Root{root}, []string{dir}
	b.context = c
	return c, nil
}

func readIgnoreFile(p string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(patterns) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return pm, nil
}

// excluder tells from docker's rules whether a path of the context is
// excluded: a pattern matches it or one of its parents, and no later "!"
// pattern takes it back.
func excluder(pm *patternmatcher.PatternMatcher) func(string) exclusion {
	return func(rel string) exclusion {
		ex, err := pm.MatchesOrParentMatches(rel)
		if err != nil || !ex {
			// A pattern that does not compile excludes nothing, as
			// docker's walker has it.
			return included
		}
		if pm.Exclusions() {
			// A "!" pattern may take back something below.
			return traversed
		}
		return excluded
	}
}

// exclusion is what .dockerignore makes of a path.
type exclusion int

const (
	included exclusion = iota
	// traversed: excluded itself, but a directory is looked into for what a
	// "!" pattern takes back.
	traversed
	excluded
)

func (c *buildContext) close() { c.view.close() }
