package tui

// How log lines reach the model. The Source calls emit from its reader
// goroutines, as fast as containers write; emit only appends to a queue.
// The model holds one command waiting on the queue (feed.next) and arms it
// again after each batch, so lines arrive as one message per batch, at
// most every interval: a key press never waits behind 10,000 messages.

import (
	"context"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
)

// logsMsg is a batch of lines, and how many the queue dropped before it.
type logsMsg struct {
	lines   []LogLine
	dropped int
}

// logsEndMsg: Source.Logs returned, with err.
type logsEndMsg struct{ err error }

type feed struct {
	interval time.Duration
	// max bounds the queue: when the model cannot keep up, the oldest
	// half goes, counted in dropped. Only the view loses them.
	max int

	mu      sync.Mutex
	pending []LogLine
	dropped int
	err     error

	// wake holds a token while pending has lines the model was not told
	// of; done closes when Source.Logs has returned.
	wake chan struct{}
	done chan struct{}
	// last is when next handed out a batch (only next touches it).
	last time.Time
}

func newFeed(interval time.Duration, max int) *feed {
	return &feed{interval: interval, max: max, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// emit queues one line; it is the callback given to Source.Logs.
func (f *feed) emit(l LogLine) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) >= f.max {
		n := len(f.pending) / 2
		f.pending = f.pending[:copy(f.pending, f.pending[n:])]
		f.dropped += n
	}
	f.pending = append(f.pending, l)
	if len(f.pending) == 1 {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// start runs src.Logs until ctx ends; wait waits for it to return.
func (f *feed) start(ctx context.Context, src Source) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		err := src.Logs(ctx, f.emit)
		f.mu.Lock()
		f.err = err
		f.mu.Unlock()
		close(f.done)
	})
	return wg.Wait
}

// next waits for lines and returns them as a logsMsg, or a logsEndMsg once
// Logs has returned and every line is out. It is a tea.Cmd.
func (f *feed) next() tea.Msg {
	for {
		select {
		case <-f.wake:
		case <-f.done:
		}
		if d := f.interval - time.Since(f.last); d > 0 {
			// Let the batch fill: one message per interval.
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-f.done:
			}
			t.Stop()
		}
		f.mu.Lock()
		lines, dropped := f.pending, f.dropped
		f.pending, f.dropped = nil, 0
		f.mu.Unlock()
		f.last = time.Now()
		if len(lines) > 0 || dropped > 0 {
			return logsMsg{lines: lines, dropped: dropped}
		}
		select {
		case <-f.done:
			// Logs has returned: nothing more comes, but lines may have
			// come since the look above.
			f.mu.Lock()
			rest, err := len(f.pending), f.err
			f.mu.Unlock()
			if rest == 0 {
				return logsEndMsg{err: err}
			}
		default:
			// A token left from a batch already taken.
		}
	}
}
