package tui

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"
)

// startFlow runs the whole program on a fake terminal, its feed following
// src as Run's does.
func startFlow(t *testing.T, src *fakeSource) (*teatest.TestModel, *model) {
	ctx, cancel := context.WithCancel(context.Background())
	m := newModel(ctx, src, testOptions(), newStyles(termenv.Ascii))
	wait := m.feed.start(ctx, src)
	t.Cleanup(func() {
		cancel()
		wait()
	})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	return tm, m
}

// waitScreen waits until the program has drawn every one of texts (in any
// of the frames since the last wait).
func waitScreen(t *testing.T, tm *teatest.TestModel, texts ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(out []byte) bool {
		for _, s := range texts {
			if !bytes.Contains(out, []byte(s)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

func TestFlowSelectSearchQuit(t *testing.T) {
	src := &fakeSource{
		containers: testContainers(),
		lines:      twoServices(),
		more:       make(chan LogLine),
	}
	tm, _ := startFlow(t, src)
	waitScreen(t, tm, "2 running · 1 healthy · 1 exited", "web-1", "db says 4", "web says 4")

	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	waitScreen(t, tm, "logs: db · following")

	// A line that comes now shows up in the pane of its service.
	src.more <- LogLine{Container: "db-1", Service: "db", Time: t0.Add(time.Minute), Text: "db ready"}
	waitScreen(t, tm, "db ready")

	tm.Type("/says 2")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitScreen(t, tm, "/says 2 1 of 1", "db-1   > db says 2")

	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	final := tm.FinalModel(t).(*model)
	if final.exit != Quit {
		t.Errorf("exit %v", final.exit)
	}
	if final.view.service < 0 || final.store.svcs[final.view.service] != "db" {
		t.Errorf("final view of service %d", final.view.service)
	}
}

func TestFlowStopAndInterrupt(t *testing.T) {
	src := &fakeSource{containers: testContainers(), more: make(chan LogLine)}
	tm, _ := startFlow(t, src)
	waitScreen(t, tm, "web-1")
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	tm.Type("s")
	waitScreen(t, tm, "Stop db? (y/n)")
	tm.Type("y")
	waitScreen(t, tm, "db stopped")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	if exit := tm.FinalModel(t).(*model).exit; exit != Interrupt {
		t.Errorf("exit %v", exit)
	}
	if acts := src.actions(); len(acts) != 1 || acts[0] != "stop db" {
		t.Errorf("actions %q", acts)
	}
}

// Run itself, on a pipe for a terminal: it draws, takes keys, returns
// why, and its log goroutine is done when it returns.
func TestRun(t *testing.T) {
	src := &fakeSource{containers: testContainers(), lines: twoServices(), more: make(chan LogLine)}
	in, keys := io.Pipe()
	defer keys.Close()
	out := &safeBuffer{}
	opts := testOptions()
	opts.Input, opts.Output = in, out
	type result struct {
		exit Exit
		err  error
	}
	done := make(chan result, 1)
	go func() {
		exit, err := Run(context.Background(), src, opts)
		done <- result{exit, err}
	}()
	teatest.WaitFor(t, out, func(b []byte) bool { return bytes.Contains(b, []byte("db says 4")) },
		teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	keys.Write([]byte("q"))
	r := <-done
	if r.err != nil || r.exit != Quit {
		t.Errorf("Run: %v, %v", r.exit, r.err)
	}

	// A cancelled context ends it too.
	ctx, cancel := context.WithCancel(context.Background())
	in, keys = io.Pipe()
	defer keys.Close()
	out = &safeBuffer{}
	opts.Input, opts.Output = in, out
	go func() {
		exit, err := Run(ctx, src, opts)
		done <- result{exit, err}
	}()
	teatest.WaitFor(t, out, func(b []byte) bool { return bytes.Contains(b, []byte("db says 4")) },
		teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	cancel()
	r = <-done
	if r.err != nil || r.exit != Canceled {
		t.Errorf("Run after cancel: %v, %v", r.exit, r.err)
	}
}

// safeBuffer is a terminal's screen for Run: written by the program, read
// by the test.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Read(p)
}
