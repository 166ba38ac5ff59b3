package tui

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// fakeSource is a project of fixed containers whose logs are the lines
// it is given, then whatever is sent on more until ctx ends.
type fakeSource struct {
	mu         sync.Mutex
	containers []Container
	listErr    error
	actErr     error
	acts       []string
	shellErr   error
	shells     []string

	lines   []LogLine
	more    chan LogLine
	logsErr error
}

var _ Source = (*fakeSource)(nil)

func (f *fakeSource) Containers(ctx context.Context) ([]Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Container(nil), f.containers...), f.listErr
}

func (f *fakeSource) Logs(ctx context.Context, emit func(LogLine)) error {
	for _, l := range f.lines {
		emit(l)
	}
	if f.logsErr != nil {
		return f.logsErr
	}
	for {
		select {
		case l := <-f.more:
			emit(l)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fakeSource) Act(ctx context.Context, a Action, service string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acts = append(f.acts, a.String()+" "+service)
	return f.actErr
}

func (f *fakeSource) Shell(ctx context.Context, container string) (*exec.Cmd, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shells = append(f.shells, container)
	if f.shellErr != nil {
		return nil, f.shellErr
	}
	return exec.Command("true"), nil
}

func (f *fakeSource) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.acts...)
}

// t0 is the fixed clock of the tests.
var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func testContainers() []Container {
	return []Container{
		{Name: "web-1", Service: "web", State: Running, Health: Healthy, Ports: "0.0.0.0:8080->80/tcp", StartedAt: t0.Add(-90 * time.Second), CPUNanos: 1e9, MemoryBytes: 12 << 20},
		{Name: "db-1", Service: "db", State: Running, StartedAt: t0.Add(-2 * time.Hour), CPUNanos: 5e9, MemoryBytes: 200 << 20, Restarts: 1},
		{Name: "job-1", Service: "job", State: Exited, ExitCode: 3},
	}
}

func testOptions() Options {
	return Options{
		Project: "shop", Footer: "q detaches", LogLines: 1000,
		Now: func() time.Time { return t0 }, Location: time.UTC, Batch: -1,
	}
}

// newTestModel is a model of src on a w×h screen, with colour or not, that
// has had its first snapshot.
func newTestModel(t testing.TB, src *fakeSource, opts Options, w, h int, color bool) *model {
	m := newModel(context.Background(), src, opts, newStyles(color))
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	cs, _ := src.Containers(context.Background())
	m.Update(snapshotMsg{cs: cs, at: t0})
	return m
}

// logLines are n lines of one container, a second apart from start, their
// text made by text(i).
func logLines(ctr, svc string, start time.Time, n int, text func(i int) string) []LogLine {
	out := make([]LogLine, n)
	for i := range out {
		out[i] = LogLine{Container: ctr, Service: svc, Time: start.Add(time.Duration(i) * time.Second), Stream: "stdout", Text: text(i)}
	}
	return out
}

func numbered(format string) func(int) string {
	return func(i int) string { return fmt.Sprintf(format, i) }
}

// press sends keys to m: names of special keys ("enter", "up") or text,
// which is typed rune by rune. It runs the commands they return that
// finish at once (actions on the fake) and feeds their messages back.
func press(m *model, keys ...string) {
	for _, k := range keys {
		var msgs []tea.KeyPressMsg
		if msg, ok := specialKeys[k]; ok {
			msgs = append(msgs, msg)
		} else {
			for _, r := range k {
				msgs = append(msgs, typed(r))
			}
		}
		for _, msg := range msgs {
			_, cmd := m.Update(msg)
			run(m, cmd)
		}
	}
}

// typed is the key press of r as bubbletea decodes it from a terminal: a
// capital letter is shift and the letter.
func typed(r rune) tea.KeyPressMsg {
	k := tea.KeyPressMsg{Code: r, Text: string(r)}
	if unicode.IsUpper(r) {
		k.Code, k.ShiftedCode, k.Mod = unicode.ToLower(r), r, tea.ModShift
	}
	return k
}

var specialKeys = map[string]tea.KeyPressMsg{
	"enter": {Code: tea.KeyEnter}, "esc": {Code: tea.KeyEscape}, "up": {Code: tea.KeyUp}, "down": {Code: tea.KeyDown},
	"pgup": {Code: tea.KeyPgUp}, "pgdown": {Code: tea.KeyPgDown}, "home": {Code: tea.KeyHome}, "end": {Code: tea.KeyEnd},
	"tab": {Code: tea.KeyTab}, "backspace": {Code: tea.KeyBackspace}, "ctrl+c": {Code: 'c', Mod: tea.ModCtrl},
	"ctrl+u": {Code: 'u', Mod: tea.ModCtrl}, "space": {Code: tea.KeySpace, Text: " "},
}

// run runs cmd if it is one of the model's own quick commands (action,
// shell request, immediate poll) and feeds the message back; commands
// that wait (ticks, the feed, exec) are left alone.
func run(m *model, cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case actedMsg, shellMsg, snapshotMsg:
		_, next := m.Update(msg)
		if _, ok := msg.(shellMsg); ok {
			return // next is the exec of the shell
		}
		run(m, next)
	}
}

// screen is m's view without escape codes.
func screen(m *model) string { return ansi.Strip(m.View().Content) }

// footerOf is the last line of the screen.
func footerOf(m *model) string {
	s := screen(m)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// titleOf is the log pane's title line.
func titleOf(m *model) string {
	for _, l := range strings.Split(screen(m), "\n") {
		if strings.HasPrefix(l, "── logs:") {
			return l
		}
	}
	return ""
}

// logPane is the lines of the log pane.
func logPane(m *model) []string {
	ls := strings.Split(screen(m), "\n")
	for i, l := range ls {
		if strings.HasPrefix(l, "── logs:") {
			return ls[i+1 : len(ls)-1]
		}
	}
	return nil
}

var errBoom = errors.New("boom")
