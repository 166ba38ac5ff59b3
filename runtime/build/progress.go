package build

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress prints the build in the style of docker's plain progress, one
// numbered vertex per step:
//
//	#5 [2/4] RUN echo hi
//	#5 0.215 hi
//	#5 DONE 0.3s
//
// or, for a step taken from the cache, "#5 CACHED".
type progress struct {
	mu sync.Mutex
	w  io.Writer
	n  int
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w}
}

// vertex is one step being printed.
type vertex struct {
	p     *progress
	n     int
	start time.Time
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

// begin prints the header of a new vertex.
func (p *progress) begin(name string) *vertex {
	p.mu.Lock()
	p.n++
	v := &vertex{p: p, n: p.n, start: time.Now()}
	p.mu.Unlock()
	p.printf("#%d %s\n", v.n, oneLine(name))
	return v
}

// log prints a line of the step's output, with the seconds since it began.
func (v *vertex) log(line string) {
	v.p.printf("#%d %.3f %s\n", v.n, time.Since(v.start).Seconds(), line)
}

// note prints a line about the step.
func (v *vertex) note(format string, args ...any) {
	v.p.printf("#%d %s\n", v.n, fmt.Sprintf(format, args...))
}

func (v *vertex) done() {
	v.p.printf("#%d DONE %.1fs\n", v.n, time.Since(v.start).Seconds())
}

func (v *vertex) cached() { v.p.printf("#%d CACHED\n", v.n) }

func (v *vertex) fail(err error) {
	v.p.printf("#%d ERROR: %v\n", v.n, err)
}

// oneLine folds an instruction of several lines (continuations, heredocs)
// into one, cut to a length a terminal shows.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
