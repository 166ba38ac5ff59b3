package project

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/runtime"
)

// LogOptions are the flags of `berth logs`.
type LogOptions struct {
	// Tail is the number of lines per container from the end (<0: all).
	Tail   int
	Follow bool
	// Since drops the lines written before it (zero: none dropped).
	Since time.Time
	// WarnUnreadable warns, as `docker compose logs` does, of each
	// container whose logging driver keeps nothing to read (none).
	WarnUnreadable bool
}

// LogFunc receives one log line of container c. e.Text is only valid during
// the call: copy it to keep it.
type LogFunc func(c *runtime.Container, e runtime.LogEntry) error

// Logs reads the logs of the given containers. Without Follow the lines of
// several containers are merged in time order; with Follow each container's
// lines arrive as they are written, until ctx ends or every container has
// stopped and its log is read to the end.
func (e *Engine) Logs(ctx context.Context, cs []*runtime.Container, opts LogOptions, fn LogFunc) error {
	if opts.WarnUnreadable {
		e.warnUnreadableLogs(cs)
	}
	ropts := runtime.LogOptions{Tail: opts.Tail, Follow: opts.Follow, Since: opts.Since}
	if len(cs) == 1 {
		c := cs[0]
		return e.runtime.ReadLogs(ctx, c.Spec.Name, ropts, func(le runtime.LogEntry) error { return fn(c, le) })
	}
	if opts.Follow {
		var mu sync.Mutex
		g, ctx := errgroup.WithContext(ctx)
		for _, c := range cs {
			g.Go(func() error {
				return e.runtime.ReadLogs(ctx, c.Spec.Name, ropts, func(le runtime.LogEntry) error {
					mu.Lock()
					defer mu.Unlock()
					return fn(c, le)
				})
			})
		}
		return g.Wait()
	}
	return e.mergedLogs(ctx, cs, ropts, fn)
}

// mergedLogs reads each container's log whole, then prints them interleaved
// by time: a k-way merge, stable for equal times.
func (e *Engine) mergedLogs(ctx context.Context, cs []*runtime.Container, opts runtime.LogOptions, fn LogFunc) error {
	entries := make([][]runtime.LogEntry, len(cs))
	for i, c := range cs {
		var buf []byte
		var offs []int
		err := e.runtime.ReadLogs(ctx, c.Spec.Name, opts, func(le runtime.LogEntry) error {
			offs = append(offs, len(buf))
			buf = append(buf, le.Text...)
			le.Text = nil
			entries[i] = append(entries[i], le)
			return nil
		})
		if err != nil {
			return err
		}
		offs = append(offs, len(buf))
		for j := range entries[i] {
			entries[i][j].Text = buf[offs[j]:offs[j+1]:offs[j+1]]
		}
	}
	next := make([]int, len(cs))
	for {
		best := -1
		for i := range cs {
			if next[i] >= len(entries[i]) {
				continue
			}
			if best < 0 || entries[i][next[i]].Time.Before(entries[best][next[best]].Time) {
				best = i
			}
		}
		if best < 0 {
			return nil
		}
		if err := fn(cs[best], entries[best][next[best]]); err != nil {
			return err
		}
		next[best]++
	}
}
