package tui

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
)

// twoServices are 5 lines of web and 5 of db, interleaved in time.

func twoServices() []LogLine {
	web := logLines("web-1", "web", t0, 5, numbered("web says %d"))
	db := logLines("db-1", "db", t0.Add(500*time.Millisecond), 5, numbered("db says %d"))
	return append(web, db...)
}

func TestSelection(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	m.Update(logsMsg{lines: twoServices()})

	pane := strings.Join(logPane(m), "\n")
	// All services, interleaved by time, padded to the longest name.
	want := "web-1  | web says 0\ndb-1   | db says 0\nweb-1  | web says 1\n"
	if !strings.HasPrefix(pane, want) {
		t.Fatalf("all services:\n%s\nwant it to start with\n%s", pane, want)
	}
	if got := titleOf(m); !strings.HasPrefix(got, "── logs: all services · following") {
		t.Errorf("title %q", got)
	}

	press(m, "down") // db-1: the list is sorted by name
	pane = strings.Join(logPane(m), "\n")
	if strings.Contains(pane, "web says") || !strings.Contains(pane, "db-1   | db says 4") {
		t.Errorf("db selected:\n%s", pane)
	}
	if got := titleOf(m); !strings.HasPrefix(got, "── logs: db · following") {
		t.Errorf("title %q", got)
	}
	if !strings.Contains(screen(m), "> db-1") {
		t.Errorf("selected row not marked:\n%s", screen(m))
	}

	press(m, "down", "down") // job-1, web-1
	if got := titleOf(m); !strings.HasPrefix(got, "── logs: web ·") {
		t.Errorf("title %q", got)
	}
	press(m, "down") // stays on the last row
	if c, _ := m.list.selected(); c.Name != "web-1" {
		t.Errorf("selected %q after moving past the end", c.Name)
	}

	// A new snapshot with another order keeps the cursor on web-1.
	cs := testContainers()
	slices.Reverse(cs)
	cs = append(cs, Container{Name: "api-1", Service: "api", State: Running})
	m.Update(snapshotMsg{cs: cs, at: t0.Add(time.Second)})
	if c, _ := m.list.selected(); c.Name != "web-1" {
		t.Errorf("selected %q after a snapshot", c.Name)
	}

	press(m, "home")
	press(m, "up", "up", "up", "up", "up", "up")
	if got := titleOf(m); !strings.HasPrefix(got, "── logs: all services") {
		t.Errorf("title %q", got)
	}
}

func TestFocusScrollsLogs(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	m.Update(logsMsg{lines: logLines("web-1", "web", t0, 100, numbered("line %d"))})
	press(m, "tab", "up")
	if m.list.cursor != 0 {
		t.Errorf("up with the logs focused moved the list to %d", m.list.cursor)
	}
	if m.view.follow {
		t.Error("up with the logs focused did not pause following")
	}
	press(m, "down")
	if !m.view.follow {
		t.Error("down back to the bottom did not follow again")
	}
}

func TestResize(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {200, 60}, {40, 10}, {120, 30}} {
		for _, color := range []bool{false, true} {
			t.Run(fmt.Sprintf("%dx%d/color=%v", size[0], size[1], color), func(t *testing.T) {
				src := &fakeSource{containers: testContainers()}
				m := newTestModel(t, src, testOptions(), 100, 30, color)
				m.Update(logsMsg{lines: append(twoServices(), LogLine{Container: "web-1", Service: "web", Time: t0.Add(time.Minute), Text: strings.Repeat("wide 字 ", 40)})})
				press(m, "t", "/", "says", "enter")
				m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
				for _, wrap := range []bool{false, true} {
					m.wrap = wrap
					checkScreen(t, m, size[0], size[1])
					m.mode = modeHelp
					checkScreen(t, m, size[0], size[1])
					m.mode = modeNormal
				}
			})
		}
	}
}

// checkScreen checks that m's view fills exactly a w×h screen.

func checkScreen(t *testing.T, m *model, w, h int) {
	t.Helper()
	lines := strings.Split(m.View().Content, "\n")
	if len(lines) != h {
		t.Errorf("%d lines for a screen %d high:\n%s", len(lines), h, screen(m))
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d wide on a screen %d wide: %q", i, n, w, ansi.Strip(l))
		}
	}
	if top := ansi.Strip(lines[0]); !strings.HasPrefix(top, "berth · shop") || w >= 80 && !strings.Contains(top, "2 running · 1 healthy · 1 exited") {
		t.Errorf("top line %q", ansi.Strip(lines[0]))
	}
}

func TestTooSmall(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 30, 8, false)
	if got := screen(m); !strings.HasPrefix(got, "terminal too small: 30×8") {
		t.Errorf("view %q", got)
	}
}

func TestNoColor(t *testing.T) {
	for _, color := range []bool{false, true} {
		src := &fakeSource{containers: testContainers(), actErr: errBoom}
		m := newTestModel(t, src, testOptions(), 80, 24, color)
		m.Update(logsMsg{lines: twoServices()})
		press(m, "/", "says", "enter", "r")
		views := []string{m.View().Content}
		press(m, "?")
		views = append(views, m.View().Content)
		for _, v := range views {
			if has := strings.Contains(v, "\x1b"); has != color {
				t.Errorf("color=%v: escape codes: %v\n%q", color, has, v)
			}
		}
	}
}

// Run draws in colour where the terminal has it and nothing says no:
// NO_COLOR set to anything, CLICOLOR=0 (unless forced), Options.NoColor.
func TestColorProfile(t *testing.T) {
	tty := []string{"TTY_FORCE=1", "TERM=xterm-256color"}
	for _, c := range []struct {
		env     []string
		noColor bool
		color   bool
	}{
		{tty, false, true},
		{tty, true, false},
		{append(tty, "NO_COLOR=1"), false, false},
		{append(tty, "NO_COLOR=yes"), false, false},
		{append(tty, "NO_COLOR="), false, true},
		{append(tty, "CLICOLOR=0"), false, false},
		{append(tty, "CLICOLOR=0", "CLICOLOR_FORCE=1"), false, true},
		{[]string{"TERM=xterm-256color"}, false, false}, // not a terminal
		{[]string{"TERM=xterm-256color", "CLICOLOR_FORCE=1"}, false, true},
	} {
		p := colorProfile(io.Discard, c.env, c.noColor)
		if color := p >= colorprofile.ANSI; color != c.color {
			t.Errorf("%q, NoColor %v: profile %v", c.env, c.noColor, p)
		}
	}
}

func TestServiceList(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	cs := testContainers()
	cs[0].CPUNanos += 250e6 // a quarter of a core for a second
	cs[1].CPUNanos += 2e9   // two cores
	m.Update(snapshotMsg{cs: cs, at: t0.Add(time.Second)})
	got := strings.Split(screen(m), "\n")[1:6]
	want := []string{
		"  NAME   STATUS        HEALTH   CPU     MEM     UP    RESTARTS  PORTS",
		"> all    3 containers",
		"  db-1   running                200.0%  200MiB  2h0m  1",
		"  job-1  exited (3)             -       -       -     0",
		"  web-1  running       healthy  25.0%   12MiB   1m    0         8080->80/tcp",
	}
	for i := range want {
		if strings.TrimRight(got[i], " ") != want[i] {
			t.Errorf("row %d\n%q\nwant\n%q", i, strings.TrimRight(got[i], " "), want[i])
		}
	}
	if sum := m.list.summary(); sum != "2 running · 1 healthy · 1 exited" {
		t.Errorf("summary %q", sum)
	}
	cs[2].State, cs[0].Health = Restarting, Unhealthy
	m.Update(snapshotMsg{cs: cs, at: t0.Add(2 * time.Second)})
	if sum := m.list.summary(); sum != "2 running · 0 healthy · 0 exited · 1 restarting · 1 unhealthy" {
		t.Errorf("summary %q", sum)
	}
	// A wide screen shows the ports whole.
	m.Update(tea.WindowSizeMsg{Width: 200, Height: 60})
	if !strings.Contains(screen(m), "8080->80/tcp") {
		t.Errorf("ports cut at 200 columns:\n%s", screen(m))
	}
	// The list scrolls with the cursor when it does not fit.
	var many []Container
	for i := range 20 {
		many = append(many, Container{Name: fmt.Sprintf("w-%02d", i), Service: "w", State: Running})
	}
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	m.Update(snapshotMsg{cs: many, at: t0})
	press(m, "down", "down", "down", "down", "down", "down", "down", "down", "down", "down")
	if s := screen(m); !strings.Contains(s, "> w-09") || strings.Contains(s, "w-00") {
		t.Errorf("list did not scroll:\n%s", s)
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m", 3*time.Hour + 12*time.Minute: "3h12m",
		50 * time.Hour: "2d2h", -time.Second: "0s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestActionErrorInFooter(t *testing.T) {
	src := &fakeSource{containers: testContainers(), actErr: errBoom}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	press(m, "down", "down", "down", "r") // web-1
	if got := footerOf(m); !strings.HasPrefix(got, "error: restart web: boom") {
		t.Errorf("footer %q", got)
	}
	if acts := src.actions(); !slices.Equal(acts, []string{"restart web"}) {
		t.Errorf("actions %q", acts)
	}
	src.actErr = nil
	press(m, "u")
	if got := footerOf(m); !strings.HasPrefix(got, "web started") {
		t.Errorf("footer %q", got)
	}
	// On the row of all, actions are on every service.
	press(m, "up", "up", "up", "r")
	if acts := src.actions(); acts[len(acts)-1] != "restart " {
		t.Errorf("actions %q", acts)
	}
	if got := footerOf(m); !strings.HasPrefix(got, "all services restarted") {
		t.Errorf("footer %q", got)
	}
	// A failed snapshot and a failed log stream say so too, and keep the
	// rows.
	m.Update(snapshotMsg{err: errBoom})
	if got := footerOf(m); !strings.HasPrefix(got, "error: list containers: boom") {
		t.Errorf("footer %q", got)
	}
	if len(m.list.rows) != 3 {
		t.Errorf("rows after a failed snapshot: %d", len(m.list.rows))
	}
	m.Update(logsEndMsg{err: errBoom})
	if got := footerOf(m); !strings.HasPrefix(got, "error: logs: boom") {
		t.Errorf("footer %q", got)
	}
}

func TestStopAsks(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	press(m, "down", "s")
	if got := footerOf(m); !strings.HasPrefix(got, "Stop db? (y/n)") {
		t.Errorf("footer %q", got)
	}
	if len(src.actions()) != 0 {
		t.Fatalf("stop before the answer: %q", src.actions())
	}
	press(m, "n")
	if got := footerOf(m); !strings.HasPrefix(got, "stop cancelled") || len(src.actions()) != 0 {
		t.Errorf("after n: footer %q, actions %q", got, src.actions())
	}
	press(m, "s", "y")
	if acts := src.actions(); !slices.Equal(acts, []string{"stop db"}) {
		t.Errorf("actions %q", acts)
	}
	if got := footerOf(m); !strings.HasPrefix(got, "db stopped") {
		t.Errorf("footer %q", got)
	}
}

func TestShell(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	press(m, "e")
	if got := footerOf(m); !strings.HasPrefix(got, "error: select a container") {
		t.Errorf("footer on the row of all %q", got)
	}
	press(m, "down", "down", "e") // job-1 has exited
	if got := footerOf(m); !strings.HasPrefix(got, "error: job-1 is exited: start it first (u)") {
		t.Errorf("footer %q", got)
	}
	press(m, "up")
	_, cmd := m.Update(typed('e'))
	msg := cmd().(shellMsg)
	if msg.cmd == nil || msg.container != "db-1" {
		t.Fatalf("shell %+v", msg)
	}
	if _, exec := m.Update(msg); exec == nil {
		t.Fatal("no command to run the shell")
	}
	m.Update(shellDoneMsg{container: "db-1", err: errBoom})
	if got := footerOf(m); !strings.HasPrefix(got, "error: shell in db-1: boom") {
		t.Errorf("footer %q", got)
	}
	src.shellErr = errBoom
	press(m, "e")
	if got := footerOf(m); !strings.HasPrefix(got, "error: shell in db-1: boom") {
		t.Errorf("footer %q", got)
	}
}

func TestHelpAndQuit(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	press(m, "?")
	s := screen(m)
	if !strings.Contains(s, "this help (any key closes it)") || !strings.Contains(s, "q detaches") {
		t.Errorf("help:\n%s", s)
	}
	press(m, "q") // closes the help, does not quit
	if m.mode != modeNormal {
		t.Error("a key did not close the help")
	}
	if _, cmd := m.Update(typed('q')); cmd == nil || m.exit != Quit {
		t.Errorf("q: exit %v", m.exit)
	}
	if got := footerOf(m); !strings.HasSuffix(got, "q detaches · ? help") {
		t.Errorf("footer %q", got)
	}
	// Once quitting, no key counts.
	if _, cmd := m.Update(typed('r')); cmd != nil || len(src.actions()) != 0 {
		t.Errorf("a key after q: %q", src.actions())
	}
	m = newTestModel(t, src, testOptions(), 80, 24, false)
	press(m, "/")
	if _, cmd := m.Update(specialKeys["ctrl+c"]); cmd == nil || m.exit != Interrupt {
		t.Errorf("ctrl+c while typing a search: exit %v", m.exit)
	}
}

func TestMouse(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	// Row 0 is the top line, 1 the list's header, 2 the row of all.
	m.Update(tea.MouseClickMsg{X: 3, Y: 3, Button: tea.MouseLeft})
	if c, _ := m.list.selected(); c.Name != "db-1" {
		t.Errorf("click selected %q", c.Name)
	}
	m.Update(tea.MouseWheelMsg{X: 3, Y: 3, Button: tea.MouseWheelDown})
	if c, _ := m.list.selected(); c.Name != "job-1" {
		t.Errorf("wheel in the list selected %q", c.Name)
	}
	m.Update(tea.MouseClickMsg{X: 3, Y: 12, Button: tea.MouseLeft})
	if m.focus != focusLogs {
		t.Error("a click in the logs did not focus them")
	}
}

// An escape and a key in one read (tmux send-keys sends them so) come as
// the key with alt, which is esc, then the key: esc then w is not alt+w.
// TestKeysFromTerminal decodes them from a terminal's bytes.
func TestAltIsEscThenKey(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	m.Update(logsMsg{lines: append(twoServices(), logLines("web-1", "web", t0.Add(time.Hour), 100, numbered("line %d"))...)})
	press(m, "/says 3", "enter")
	if got := titleOf(m); !strings.Contains(got, "/says 3 2 of 2") {
		t.Errorf("title %q", got)
	}
	m.Update(tea.KeyPressMsg{Code: 'w', Mod: tea.ModAlt})
	if got := titleOf(m); strings.Contains(got, "/says") || !strings.Contains(got, "wrap") {
		t.Errorf("esc, w: title %q", got)
	}
	// A shifted key keeps its shift: alt+G is esc, G.
	press(m, "pgup")
	m.Update(tea.KeyPressMsg{Code: 'g', ShiftedCode: 'G', Mod: tea.ModShift | tea.ModAlt})
	if !m.view.follow {
		t.Errorf("esc, G: not following; title %q", titleOf(m))
	}
	// Once q is in, the keys after it do not count.
	press(m, "tq?")
	if !m.timestamps || m.exit != Quit || m.mode == modeHelp {
		t.Errorf("tq?: timestamps %v, exit %v, mode %v", m.timestamps, m.exit, m.mode)
	}
}

// A paste goes into a search or filter term only, up to its first line
// break; elsewhere it means nothing.
func TestPaste(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	m.Update(tea.PasteMsg{Content: "q"})
	if m.quit {
		t.Error("a paste of q quit")
	}
	press(m, "/")
	m.Update(tea.PasteMsg{Content: "says\nq"})
	if string(m.input) != "says" || m.quit {
		t.Errorf("after a paste: input %q, quit %v", string(m.input), m.quit)
	}
}

// One action at a time; and once Run has closed the calls, a command
// calls the Source no more.
func TestOneActionAtATime(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	_, first := m.Update(typed('r'))
	if _, cmd := m.Update(typed('u')); cmd != nil {
		t.Error("a second action while the first runs")
	}
	if got := footerOf(m); !strings.HasPrefix(got, "still restarting all services…") {
		t.Errorf("footer %q", got)
	}
	run(m, first)
	press(m, "u")
	if acts := src.actions(); !slices.Equal(acts, []string{"restart ", "start "}) {
		t.Errorf("actions %q", acts)
	}
	_, cmd := m.Update(typed('r'))
	m.calls.close()
	if msg := cmd(); msg != nil || len(src.actions()) != 2 {
		t.Errorf("after close: %v, actions %q", msg, src.actions())
	}
}
