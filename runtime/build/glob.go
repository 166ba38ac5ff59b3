package build

import (
	"fmt"
	"path"
	"strings"
)

// match is a source a path or pattern found: the file (symlinks
// followed) and the path it was found by, whose last element names it in a
// destination directory.
type match struct {
	node *node
	rel  string
}

// hasMeta reports whether p has glob characters.
func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }

// glob finds the files of v that pattern (slash-separated, clean, from the
// view's root) names, in lexical order: the pattern's elements are matched
// as path.Match does, one directory level each, and symlinks found are
// followed inside the view.
func glob(v *fsView, pattern string) ([]match, error) {
	if !hasMeta(pattern) {
		n, _, err := v.resolve(pattern, true)
		if err != nil || n == nil {
			return nil, err
		}
		return []match{{node: n, rel: pattern}}, nil
	}
	parts := splitPath(pattern)
	var out []match
	var find func(dir *node, rel string, i int) error
	find = func(dir *node, rel string, i int) error {
		last := i == len(parts)-1
		part := parts[i]
		if !hasMeta(part) {
			n, _, err := v.resolve(path.Join(dir.rel, part), true)
			if err != nil || n == nil {
				return err
			}
			if last {
				out = append(out, match{node: n, rel: path.Join(rel, part)})
			} else if n.isDir() {
				return find(n, path.Join(rel, part), i+1)
			}
			return nil
		}
		if _, err := path.Match(part, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", pattern, err)
		}
		children, err := v.list(dir)
		if err != nil {
			return err
		}
		for _, ch := range children {
			name := path.Base(ch.rel)
			if ok, _ := path.Match(part, name); !ok {
				continue
			}
			n := ch
			if n.isSymlink() {
				if n, _, err = v.resolve(ch.rel, true); err != nil {
					return err
				} else if n == nil {
					continue
				}
			}
			if last {
				out = append(out, match{node: n, rel: path.Join(rel, name)})
			} else if n.isDir() {
				if err := find(n, path.Join(rel, name), i+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if len(parts) == 0 {
		return nil, nil
	}
	if err := find(v.root(), "", 0); err != nil {
		return nil, err
	}
	return out, nil
}
