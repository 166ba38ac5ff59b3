package tui

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
)

// flowModel is a model of src whose feed follows src as Run's does, until
// the test ends.
func flowModel(t *testing.T, src *fakeSource) *model {
	ctx, cancel := context.WithCancel(context.Background())
	m := newModel(ctx, src, testOptions(), newStyles(false))
	wait := m.feed.start(ctx, src)
	t.Cleanup(func() {
		cancel()
		wait()
	})
	return m
}

// recorder is the model as the flow tests run it: it keeps the screens it
// drew, for waitScreen. The terminal's bytes would not do: bubbletea
// draws only the cells that changed, so a line on the screen need not be
// a line of the output.
type recorder struct {
	*model
	mu     sync.Mutex
	frames []string
}

func (r *recorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := r.model.Update(msg)
	return r, cmd
}

func (r *recorder) View() tea.View {
	v := r.model.View()
	r.mu.Lock()
	r.frames = append(r.frames, ansi.Strip(v.Content))
	r.mu.Unlock()
	return v
}

// take hands out the screens drawn since the last take.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.frames
	r.frames = nil
	return f
}

// startFlow runs the whole program on a fake terminal.
func startFlow(t *testing.T, src *fakeSource) (*teatest.TestModel, *recorder) {
	rec := &recorder{model: flowModel(t, src)}
	tm := teatest.NewTestModel(t, rec, teatest.WithInitialTermSize(80, 24))
	return tm, rec
}

// waitScreen waits until the program has drawn every one of texts (in any
// of the screens since the last wait).
func waitScreen(t *testing.T, rec *recorder, texts ...string) {
	t.Helper()
	var seen strings.Builder
	for deadline := time.Now().Add(5 * time.Second); ; {
		for _, f := range rec.take() {
			seen.WriteString(f)
			seen.WriteByte('\n')
		}
		missing := false
		for _, s := range texts {
			missing = missing || !strings.Contains(seen.String(), s)
		}
		if !missing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screens never showed %q; the last:\n%s", texts, lastScreen(seen.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastScreen is the last 24 lines of screens.
func lastScreen(screens string) string {
	ls := strings.Split(strings.TrimSuffix(screens, "\n"), "\n")
	return strings.Join(ls[max(len(ls)-24, 0):], "\n")
}

func TestFlowSelectSearchQuit(t *testing.T) {
	src := &fakeSource{
		containers: testContainers(),
		lines:      twoServices(),
		more:       make(chan LogLine),
	}
	tm, rec := startFlow(t, src)
	waitScreen(t, rec, "2 running · 1 healthy · 1 exited", "web-1", "db says 4", "web says 4")

	tm.Send(tea.KeyPressMsg{Code: tea.KeyDown})
	waitScreen(t, rec, "logs: db · following")

	// A line that comes now shows up in the pane of its service.
	src.more <- LogLine{Container: "db-1", Service: "db", Time: t0.Add(time.Minute), Text: "db ready"}
	waitScreen(t, rec, "db ready")

	tm.Type("/says 2")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitScreen(t, rec, "/says 2 1 of 1", "db-1   > db says 2")

	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	final := tm.FinalModel(t).(*recorder).model
	if final.exit != Quit {
		t.Errorf("exit %v", final.exit)
	}
	if final.view.service < 0 || final.store.svcs[final.view.service] != "db" {
		t.Errorf("final view of service %d", final.view.service)
	}
}

func TestFlowStopAndInterrupt(t *testing.T) {
	src := &fakeSource{containers: testContainers(), more: make(chan LogLine)}
	tm, rec := startFlow(t, src)
	waitScreen(t, rec, "web-1")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyDown})
	tm.Type("s")
	waitScreen(t, rec, "Stop db? (y/n)")
	tm.Type("y")
	waitScreen(t, rec, "db stopped")
	tm.Send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	if exit := tm.FinalModel(t).(*recorder).exit; exit != Interrupt {
		t.Errorf("exit %v", exit)
	}
	if acts := src.actions(); len(acts) != 1 || acts[0] != "stop db" {
		t.Errorf("actions %q", acts)
	}
}

// Keys as a terminal sends them, several in one read: bubbletea decodes
// them one by one, enter from \r, and an escape with the key after it as
// alt and the key, which the model takes as esc, then the key.
func TestKeysFromTerminal(t *testing.T) {
	src := &fakeSource{containers: testContainers(), lines: twoServices(), more: make(chan LogLine)}
	in, keys := io.Pipe()
	defer keys.Close()
	p := tea.NewProgram(flowModel(t, src), tea.WithInput(in), tea.WithOutput(io.Discard),
		tea.WithoutSignalHandler(), tea.WithWindowSize(80, 24))
	go func() {
		// A filter, a search, esc (ends the search) with w, t, then q.
		keys.Write([]byte("fsays 3\r/web\r\x1bwtq"))
	}()
	final, err := p.Run()
	if err != nil {
		t.Fatal(err)
	}
	m := final.(*model)
	if m.exit != Quit || m.view.filter.term != "says 3" || !m.view.search.empty() || !m.wrap || !m.timestamps {
		t.Errorf("exit %v, filter %q, search %q, wrap %v, timestamps %v",
			m.exit, m.view.filter.term, m.view.search.term, m.wrap, m.timestamps)
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
