package tui

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
)

func TestScrollPauseFollow(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	m.Update(logsMsg{lines: logLines("web-1", "web", t0, 100, numbered("line %d"))})
	pane := logPane(m)
	if last := pane[len(pane)-1]; last != "web-1  | line 99" {
		t.Fatalf("following: last row %q", last)
	}

	press(m, "pgup")
	if got := titleOf(m); !strings.Contains(got, "paused (G follows)") {
		t.Errorf("title after pgup %q", got)
	}
	before := logPane(m)
	if before[len(before)-1] == "web-1  | line 99" {
		t.Error("pgup did not scroll")
	}

	m.Update(logsMsg{lines: logLines("web-1", "web", t0.Add(time.Hour), 7, numbered("new %d"))})
	if got := titleOf(m); !strings.Contains(got, "paused, 7 new lines (G follows)") {
		t.Errorf("title with new lines %q", got)
	}
	if after := logPane(m); !slices.Equal(before, after) {
		t.Errorf("a paused pane moved:\n%s\n---\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}

	press(m, "G")
	if got := titleOf(m); !strings.Contains(got, "following") {
		t.Errorf("title after G %q", got)
	}
	pane = logPane(m)
	if last := pane[len(pane)-1]; last != "web-1  | new 6" {
		t.Errorf("after G: last row %q", last)
	}

	// End does the same, and the wheel pauses too.
	m.Update(tea.MouseWheelMsg{X: 10, Y: 15, Button: tea.MouseWheelUp})
	if m.view.follow {
		t.Error("wheel up did not pause")
	}
	m.Update(logsMsg{lines: logLines("web-1", "web", t0.Add(2*time.Hour), 1, numbered("one more %d"))})
	if got := titleOf(m); !strings.Contains(got, "paused, 1 new line (G follows)") {
		t.Errorf("title after wheel %q", got)
	}
	press(m, "end")
	if !m.view.follow {
		t.Error("end did not follow")
	}

	// Scrolling down to the bottom follows again by itself.
	press(m, "pgup", "pgdown")
	if !m.view.follow {
		t.Error("pgdown to the bottom did not follow")
	}
	// Home shows the oldest line first.
	press(m, "home")
	if pane := logPane(m); pane[0] != "web-1  | line 0" {
		t.Errorf("home: first row %q", pane[0])
	}
}

func TestSearch(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	m.Update(logsMsg{lines: logLines("web-1", "web", t0, 100, func(i int) string {
		if i%30 == 5 {
			return fmt.Sprintf("line %d: ERROR disk full", i)
		}
		return fmt.Sprintf("line %d: ok", i)
	})})

	press(m, "/", "error")
	if got := footerOf(m); !strings.HasPrefix(got, "/error█") {
		t.Errorf("footer while typing %q", got)
	}
	press(m, "enter")
	// The search starts at the bottom of the screen and goes up: line 95
	// is the newest match, and on screen already, so nothing moves, but
	// the pane stops following lest it scroll away.
	if got := titleOf(m); !strings.Contains(got, "paused (G follows)") || !strings.Contains(got, "/error 4 of 4") {
		t.Errorf("title after search %q", got)
	}
	if !slices.Contains(logPane(m), "web-1  > line 95: ERROR disk full") {
		t.Errorf("current match not marked:\n%s", strings.Join(logPane(m), "\n"))
	}

	press(m, "N")
	if got := titleOf(m); !strings.Contains(got, "/error 3 of 4") || !strings.Contains(got, "paused") {
		t.Errorf("title after N %q", got)
	}
	if !slices.Contains(logPane(m), "web-1  > line 65: ERROR disk full") {
		t.Errorf("N did not bring line 65:\n%s", strings.Join(logPane(m), "\n"))
	}
	press(m, "N", "N")
	if got := titleOf(m); !strings.Contains(got, "/error 1 of 4") {
		t.Errorf("title after N N N %q", got)
	}
	press(m, "N")
	if got := titleOf(m); !strings.Contains(got, "/error 4 of 4") {
		t.Errorf("title after wrapping back %q", got)
	}
	if got := footerOf(m); !strings.HasPrefix(got, "search wrapped to the newest line") {
		t.Errorf("footer after wrapping %q", got)
	}
	press(m, "n")
	if got := titleOf(m); !strings.Contains(got, "/error 1 of 4") {
		t.Errorf("title after n %q", got)
	}

	// Lines that come later are counted.
	m.Update(logsMsg{lines: logLines("web-1", "web", t0.Add(time.Hour), 1, numbered("error %d again"))})
	if got := titleOf(m); !strings.Contains(got, "/error 1 of 5") {
		t.Errorf("title after a new match %q", got)
	}

	// Smart case: a capital letter matches only itself.
	press(m, "/", "Error", "enter")
	if got := titleOf(m); !strings.Contains(got, "/Error no match") {
		t.Errorf("title of a case-sensitive search %q", got)
	}
	if got := footerOf(m); !strings.HasPrefix(got, `no line matches "Error"`) {
		t.Errorf("footer %q", got)
	}
	press(m, "esc")
	if got := titleOf(m); strings.Contains(got, "/Error") {
		t.Errorf("esc did not end the search: %q", got)
	}
	press(m, "n")
	if got := footerOf(m); !strings.HasPrefix(got, "no search: press / first") {
		t.Errorf("footer %q", got)
	}

	// A match near the newest line, from far above, brings the pane down
	// as far as it goes, not further.
	press(m, "home", "/", "line 98", "enter")
	if pane := logPane(m); pane[0] != "web-1  | line 85: ok" || pane[len(pane)-1] != "web-1  | error 0 again" {
		t.Errorf("pane after a jump near the end:\n%s", strings.Join(pane, "\n"))
	}
}

func TestSearchHighlight(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, true)
	m.Update(logsMsg{lines: []LogLine{
		{Container: "web-1", Service: "web", Time: t0, Text: "a needle and a Needle"},
		{Container: "web-1", Service: "web", Time: t0, Text: "needle again"},
	}})
	press(m, "/", "needle", "enter")
	view := m.View().Content
	cur := m.st.current.Render("needle")
	other := m.st.match.Render("needle")
	if cur == "needle" || other == "needle" || cur == other {
		t.Fatalf("styles do not show: %q %q", cur, other)
	}
	// The current match is the newest line; the other line's matches are
	// highlighted as matches, both cases.
	if !strings.Contains(view, cur+" again") {
		t.Errorf("current match not highlighted: %q", view)
	}
	if !strings.Contains(view, "a "+other+" and a "+m.st.match.Render("Needle")) {
		t.Errorf("matches not highlighted: %q", view)
	}
}

func TestFilter(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	m.Update(logsMsg{lines: twoServices()})

	press(m, "f", "says 3", "enter")
	got := strings.TrimRight(strings.Join(logPane(m), "\n"), "\n")
	if want := "web-1  | web says 3\ndb-1   | db says 3"; got != want {
		t.Errorf("filtered pane:\n%s\nwant\n%s", got, want)
	}
	if got := titleOf(m); !strings.Contains(got, `filter "says 3": 2 lines`) {
		t.Errorf("title %q", got)
	}
	// New lines go through the filter too.
	m.Update(logsMsg{lines: []LogLine{
		{Container: "web-1", Service: "web", Time: t0.Add(time.Hour), Text: "web says 3 again"},
		{Container: "web-1", Service: "web", Time: t0.Add(time.Hour), Text: "web says 4 again"},
	}})
	if got := titleOf(m); !strings.Contains(got, `2 lines`) && !strings.Contains(got, `3 lines`) {
		t.Errorf("title %q", got)
	}
	if pane := strings.Join(logPane(m), "\n"); !strings.Contains(pane, "web says 3 again") || strings.Contains(pane, "web says 4 again") {
		t.Errorf("new lines through the filter:\n%s", pane)
	}
	// Filter and selection together.
	press(m, "down")
	if got := strings.TrimRight(strings.Join(logPane(m), "\n"), "\n"); got != "db-1   | db says 3" {
		t.Errorf("db through the filter:\n%s", got)
	}
	press(m, "f", "ctrl+u", "nothing like it", "enter")
	if pane := logPane(m); pane[0] != `no line matches the filter "nothing like it"` {
		t.Errorf("empty filter result: %q", pane[0])
	}
	// f shows the filter to edit; an empty one keeps every line.
	press(m, "f")
	if got := footerOf(m); !strings.HasPrefix(got, "filter: nothing like it█") {
		t.Errorf("footer %q", got)
	}
	press(m, "backspace", "ctrl+u", "enter")
	if got := titleOf(m); strings.Contains(got, "filter") {
		t.Errorf("filter still on: %q", got)
	}
	press(m, "f", "db", "enter", "esc")
	if got := titleOf(m); strings.Contains(got, "filter") {
		t.Errorf("esc did not end the filter: %q", got)
	}
}

func TestTimestampsAndWrap(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	long := strings.Repeat("0123456789", 10)
	m.Update(logsMsg{lines: []LogLine{
		{Container: "web-1", Service: "web", Time: t0.Add(1500 * time.Millisecond), Text: "short"},
		{Container: "web-1", Service: "web", Time: t0.Add(2 * time.Second), Text: long},
	}})
	pane := logPane(m)
	if pane[0] != "web-1  | short" {
		t.Errorf("row %q", pane[0])
	}
	// 80 columns less "web-1  | ": 71 for the text, the last one "…".
	if want := "web-1  | " + long[:70] + "…"; pane[1] != want {
		t.Errorf("cut row\n%q\nwant\n%q", pane[1], want)
	}

	press(m, "t")
	if pane := logPane(m); pane[0] != "web-1  | 10:00:01.500 short" {
		t.Errorf("with timestamps: %q", pane[0])
	}
	if got := titleOf(m); !strings.Contains(got, " · time ") {
		t.Errorf("title %q", got)
	}
	press(m, "t", "w")
	pane = logPane(m)
	if want := "web-1  | " + long[:71]; pane[1] != want {
		t.Errorf("first wrapped row\n%q\nwant\n%q", pane[1], want)
	}
	if want := "         " + long[71:]; pane[2] != want {
		t.Errorf("second wrapped row\n%q\nwant\n%q", pane[2], want)
	}
	if got := titleOf(m); !strings.Contains(got, " · wrap ") {
		t.Errorf("title %q", got)
	}
}

func TestWrapFollowCutsTheOldestLine(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	press(m, "w")
	m.Update(logsMsg{lines: logLines("web-1", "web", t0, 30, func(int) string { return strings.Repeat("x", 100) })})
	pane := logPane(m)
	if len(pane) != m.logRows() {
		t.Fatalf("%d rows, want %d", len(pane), m.logRows())
	}
	// Each line takes two rows; 16 rows hold 8 lines, the newest at the
	// bottom.
	if last := pane[len(pane)-1]; last != "         "+strings.Repeat("x", 29) {
		t.Errorf("last row %q", last)
	}
	press(m, "pgup")
	if m.view.follow {
		t.Error("pgup with wrapped lines did not pause")
	}
}
