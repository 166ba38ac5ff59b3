package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRing(t *testing.T) {
	r := &ring{size: 3}
	for i := range 5 {
		old, evicted := r.push(entry{seq: uint64(i)})
		if evicted != (i >= 3) || evicted && old.seq != uint64(i-3) {
			t.Errorf("push %d: evicted %v, old %d", i, evicted, old.seq)
		}
	}
	if r.first != 2 || r.next != 5 || len(r.buf) != 3 {
		t.Fatalf("first %d next %d len %d", r.first, r.next, len(r.buf))
	}
	for n := uint64(0); n < 6; n++ {
		if r.has(n) != (n >= 2 && n < 5) {
			t.Errorf("has(%d) = %v", n, r.has(n))
		}
		if r.has(n) && r.at(n).seq != n {
			t.Errorf("at(%d) is line %d", n, r.at(n).seq)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":                   "plain text",
		"\x1b[31mred\x1b[0m and plain": "red and plain",
		"a\tb\tc":                      "a       b       c",
		"progress 50%\rprogress 100%":  "progress 50%progress 100%",
		"bell\a and \x1b]0;title\a":    "bell and ",
		"bad \xff byte":                "bad \uFFFD byte",
		"naïve":                        "naïve",
	} {
		if got, _ := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMatcher(t *testing.T) {
	for _, c := range []struct {
		term, s string
		want    int
	}{
		{"err", "an ERROR here", 3},
		{"Err", "an ERROR here", -1},
		{"Err", "an Error here", 3},
		{"élan", "with ÉLAN", 5},
		{"x", "", -1},
		{"", "anything", -1},
	} {
		if got := newMatcher(c.term).index(c.s, 0); got != c.want {
			t.Errorf("%q in %q: %d, want %d", c.term, c.s, got, c.want)
		}
	}
	if got := newMatcher("ab").spans("ab xab abab"); !slices.Equal(got, [][2]int{{0, 2}, {4, 6}, {7, 9}, {9, 11}}) {
		t.Errorf("spans %v", got)
	}
}

// A noisy service pushes out its own lines only; the view's list of lines
// stays bounded however many come.
func TestRingPerService(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	opts := testOptions()
	opts.LogLines = 100
	m := newTestModel(t, src, opts, 80, 24, false)
	m.Update(logsMsg{lines: logLines("db-1", "db", t0, 5, numbered("db %d"))})
	for i := range 100 {
		m.Update(logsMsg{lines: logLines("web-1", "web", t0.Add(time.Minute), 100, numbered(fmt.Sprintf("web %d.%%d", i)))})
	}
	if n := m.view.size(); n != 105 {
		t.Errorf("all services: %d lines, want 105", n)
	}
	if len(m.view.refs) > 105*4/3+1 {
		t.Errorf("view holds %d refs for 105 lines", len(m.view.refs))
	}
	if cap(m.store.rings[m.store.svcOf["web"]].buf) != 100 {
		t.Errorf("ring capacity %d", cap(m.store.rings[m.store.svcOf["web"]].buf))
	}
	press(m, "down")
	if got := strings.Join(logPane(m)[:6], "\n"); got != "db-1   | db 0\ndb-1   | db 1\ndb-1   | db 2\ndb-1   | db 3\ndb-1   | db 4\n" {
		t.Errorf("db after web's flood:\n%s", got)
	}
}

// A paused window whose lines leave their ring moves on to the oldest
// line kept, and keeps counting what is new.
func TestPausedWindowEvicted(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	opts := testOptions()
	opts.LogLines = 50
	m := newTestModel(t, src, opts, 80, 24, false)
	m.Update(logsMsg{lines: logLines("web-1", "web", t0, 50, numbered("old %d"))})
	press(m, "home")
	m.Update(logsMsg{lines: logLines("web-1", "web", t0.Add(time.Hour), 30, numbered("new %d"))})
	pane := logPane(m)
	if pane[0] != "web-1  | old 30" {
		t.Errorf("first row %q", pane[0])
	}
	if got := titleOf(m); !strings.Contains(got, "paused, 30 new lines") {
		t.Errorf("title %q", got)
	}
	press(m, "/", "new 3", "enter")
	if got := titleOf(m); !strings.Contains(got, "/new 3 1 of 1") {
		t.Errorf("title %q", got)
	}
	m.Update(logsMsg{lines: logLines("web-1", "web", t0.Add(2*time.Hour), 49, numbered("newer %d"))})
	if got := titleOf(m); !strings.Contains(got, "/new 3 no match") {
		t.Errorf("title once the match left %q", got)
	}
}

// A restarted or recreated container, and a new replica, go on in the
// same pane: the pane is the service's.
func TestServiceKeepsStreaming(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	press(m, "down", "down", "down") // web-1
	m.Update(logsMsg{lines: logLines("web-1", "web", t0, 2, numbered("before %d"))})
	cs := testContainers()
	cs[0].State, cs[0].Restarts = Restarting, 1
	m.Update(snapshotMsg{cs: cs, at: t0.Add(time.Second)})
	cs[0].State = Running
	cs = append(cs, Container{Name: "web-2", Service: "web", State: Running})
	m.Update(snapshotMsg{cs: cs, at: t0.Add(2 * time.Second)})
	m.Update(logsMsg{lines: append(
		logLines("web-1", "web", t0.Add(time.Minute), 2, numbered("after %d")),
		logLines("web-2", "web", t0.Add(time.Minute+time.Millisecond), 1, numbered("replica %d"))...)})
	got := strings.TrimRight(strings.Join(logPane(m), "\n"), "\n")
	want := "web-1  | before 0\nweb-1  | before 1\nweb-1  | after 0\nweb-2  | replica 0\nweb-1  | after 1"
	if got != want {
		t.Errorf("pane:\n%s\nwant\n%s", got, want)
	}
	if c, _ := m.list.selected(); c.Name != "web-1" {
		t.Errorf("selected %q", c.Name)
	}
}

func TestDroppedShown(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 200, 30, false)
	m.Update(logsMsg{lines: twoServices(), dropped: 1234})
	if got := titleOf(m); !strings.Contains(got, "1234 lines not shown (too fast; berth logs has them)") {
		t.Errorf("title %q", got)
	}
}

func TestFeedBatches(t *testing.T) {
	f := newFeed(0, 100)
	for _, l := range twoServices() {
		f.emit(l)
	}
	msg, ok := f.next().(logsMsg)
	if !ok || len(msg.lines) != 10 || msg.dropped != 0 {
		t.Fatalf("batch %+v", msg)
	}
}

func TestFeedDropsOldest(t *testing.T) {
	f := newFeed(0, 10)
	for _, l := range logLines("web-1", "web", t0, 25, numbered("%d")) {
		f.emit(l)
	}
	msg := f.next().(logsMsg)
	if msg.dropped == 0 || msg.dropped+len(msg.lines) != 25 || len(msg.lines) > 10 {
		t.Errorf("%d lines, %d dropped", len(msg.lines), msg.dropped)
	}
	if last := msg.lines[len(msg.lines)-1].Text; last != "24" {
		t.Errorf("newest line %q", last)
	}
}

// Lines from several goroutines all arrive, in batches, and then the end
// with the error that stopped Logs.
func TestFeedEnd(t *testing.T) {
	src := &fakeSource{logsErr: errBoom}
	for i := range 4 {
		src.lines = append(src.lines, logLines(fmt.Sprintf("c-%d", i), "s", t0, 500, numbered("%d"))...)
	}
	f := newFeed(0, 1<<20)
	wait := f.start(context.Background(), src)
	defer wait()
	var more sync.WaitGroup
	for range 4 {
		more.Go(func() {
			for _, l := range logLines("x", "s", t0, 500, numbered("%d")) {
				f.emit(l)
			}
		})
	}
	n := 0
	for {
		switch msg := f.next().(type) {
		case logsMsg:
			n += len(msg.lines)
			continue
		case logsEndMsg:
			if !errors.Is(msg.err, errBoom) {
				t.Errorf("end: %v", msg.err)
			}
		}
		break
	}
	more.Wait()
	// The other goroutines may still have been emitting after the end.
	for {
		f.mu.Lock()
		rest := len(f.pending)
		f.pending = nil
		f.mu.Unlock()
		n += rest
		if rest == 0 {
			break
		}
	}
	if n != 4000 {
		t.Errorf("%d lines, want 4000", n)
	}
}

// Lines of several containers in one batch are shown in time order.
func TestBatchInTimeOrder(t *testing.T) {
	src := &fakeSource{containers: testContainers()}
	m := newTestModel(t, src, testOptions(), 80, 24, false)
	web := logLines("web-1", "web", t0, 3, numbered("web %d"))
	db := logLines("db-1", "db", t0.Add(500*time.Millisecond), 3, numbered("db %d"))
	m.Update(logsMsg{lines: append(web, db...)})
	got := strings.TrimRight(strings.Join(logPane(m), "\n"), "\n")
	if want := "web-1  | web 0\ndb-1   | db 0\nweb-1  | web 1\ndb-1   | db 1\nweb-1  | web 2\ndb-1   | db 2"; got != want {
		t.Errorf("pane:\n%s\nwant\n%s", got, want)
	}
}
