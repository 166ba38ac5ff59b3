package build

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	// name is how messages name the file ("Dockerfile", "app/Dockerfile.dev").
	name string
	// path is the file on disk; empty for an inline Dockerfile.
	path     string
	size     int
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
}

// readDockerfile reads and parses the Dockerfile that opts name.
func readDockerfile(opts Options) (*dockerfile, error) {
	if opts.Inline != "" {
		return parseDockerfile("Dockerfile (inline)", "", []byte(opts.Inline))
	}
	p := opts.Dockerfile
	if p == "" {
		p = "Dockerfile"
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(opts.ContextDir, p)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrDockerfile, p, err)
	}
	return parseDockerfile(displayName(opts.ContextDir, p), p, data)
}

// displayName is p relative to the context when it is inside it, as the
// user most likely wrote it.
func displayName(contextDir, p string) string {
	if rel, err := filepath.Rel(contextDir, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}

func parseDockerfile(name, path string, data []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, locate(name, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, locate(name, err)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%s: %w: no FROM instruction: a Dockerfile starts with FROM (after ARGs)", name, ErrDockerfile)
	}
	return &dockerfile{name: name, path: path, size: len(data), stages: stages, metaArgs: metaArgs, escape: res.EscapeToken}, nil
}

// locate turns a parser error into "Dockerfile:LINE: message".
func locate(name string, err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) {
		line := 0
		if len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
			line = le.Locations[0][0].Start.Line
		}
		msg := le.Unwrap().Error()
		if msg == "no build stage in current context" {
			msg = "the Dockerfile must start with FROM (only ARGs may come before it)"
		}
		return fmt.Errorf("%s:%d: %w: %s", name, line, ErrDockerfile, msg)
	}
	return fmt.Errorf("%s: %w: %s", name, ErrDockerfile, strings.TrimPrefix(err.Error(), "dockerfile parse error "))
}

// lineOf is the first line of an instruction, for messages.
func lineOf(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// stepError is an error of one instruction, told with the Dockerfile's
// name and the instruction's line.
type stepError struct {
	file string
	line int
	// step is the step as the progress shows it ("[2/4] RUN exit 3").
	step string
	err  error
}

func (e *stepError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %v", e.file, e.line, e.step, e.err)
}

func (e *stepError) Unwrap() error { return e.err }
