package tui

// The root model: it owns the service list, the kept logs and the log
// view, and turns messages (snapshots, log batches, keys, results of
// actions) into changes of them. Drawing is in render.go, keys in
// keys.go, actions in actions.go.

import (
	"context"
	"errors"
	"slices"
	"time"

	tea "charm.land/bubbletea/v2"
)

// mode is what keys mean at the moment.
type mode int

const (
	modeNormal  mode = iota
	modeSearch       // typing a search term after /
	modeFilter       // typing a filter after f
	modeConfirm      // waiting for y or n
	modeHelp         // the key help covers the log pane
)

// focus is the pane that arrow keys move.
type focus int

const (
	focusList focus = iota
	focusLogs
)

type model struct {
	ctx  context.Context
	src  Source
	opts Options
	st   styles
	feed *feed

	store *store
	view  *logView
	list  serviceList
	// loaded: a snapshot has come; following: the model waits for log
	// lines from the feed.
	loaded, following bool

	width, height int
	focus         focus
	mode          mode
	input         []rune
	// asked is the action that waits for its confirmation; busy says
	// the one running ("restarting web"), if any.
	asked acted
	busy  string
	calls *calls

	status    string
	statusErr bool

	timestamps, wrap bool
	// dropped counts the lines the feed dropped before the model saw them.
	dropped int
	// quit: the user asked to leave, for the reason exit.
	quit bool
	exit Exit
}

// snapshotMsg is a result of Source.Containers, taken at at; ticked tells
// the one of the regular poll, after which the next is due.
type snapshotMsg struct {
	cs     []Container
	err    error
	at     time.Time
	ticked bool
}

// pollMsg: time for the next regular snapshot.
type pollMsg struct{}

func newModel(ctx context.Context, src Source, opts Options, st styles) *model {
	opts = opts.withDefaults()
	s := newStore(opts.LogLines)
	return &model{
		ctx: ctx, src: src, opts: opts, st: st,
		// The size of a terminal that does not tell its own, until a
		// WindowSizeMsg says otherwise.
		width: 80, height: 24,
		feed:  newFeed(opts.Batch, max(4*opts.LogLines, 20000)),
		calls: &calls{},
		store: s,
		view:  newLogView(s),
	}
}

// Init takes the first snapshot. The log lines wait in the feed until it
// has come: the services take their colours in the order of their names,
// not in the order their first lines happen to arrive.
func (m *model) Init() tea.Cmd {
	return m.poll(true)
}

// poll takes a snapshot of the containers.
func (m *model) poll(ticked bool) tea.Cmd {
	ctx, src, now, calls := m.ctx, m.src, m.opts.Now, m.calls
	return func() tea.Msg {
		if !calls.begin() {
			return nil
		}
		defer calls.end()
		cs, err := src.Containers(ctx)
		return snapshotMsg{cs: cs, err: err, at: now(), ticked: ticked}
	}
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case tea.KeyPressMsg:
		if m.quit {
			return m, nil
		}
		return m, m.keys(msg)
	case tea.PasteMsg:
		if !m.quit {
			m.paste(msg.Content)
		}
		return m, nil
	case tea.MouseMsg:
		m.mouse(msg)
		return m, nil
	case logsMsg:
		m.ingest(msg)
		return m, m.feed.next
	case logsEndMsg:
		if msg.err != nil && !errors.Is(msg.err, context.Canceled) {
			m.fail("logs: " + msg.err.Error())
		}
		return m, nil
	case snapshotMsg:
		m.snapshot(msg)
		var cmds []tea.Cmd
		if !m.following {
			m.following = true
			cmds = append(cmds, m.feed.next)
		}
		if msg.ticked {
			cmds = append(cmds, tea.Tick(m.opts.Poll, func(time.Time) tea.Msg { return pollMsg{} }))
		}
		return m, tea.Batch(cmds...)
	case pollMsg:
		return m, m.poll(true)
	case actedMsg:
		m.acted(msg)
		return m, m.poll(false)
	case shellMsg:
		return m, m.shell(msg)
	case shellDoneMsg:
		m.shellDone(msg)
		return m, m.poll(false)
	}
	return m, nil
}

func (m *model) snapshot(msg snapshotMsg) {
	if msg.err != nil {
		m.fail("list containers: " + msg.err.Error())
		return
	}
	// The services take their colours in the order of their names, and
	// those that come later after them.
	svcs := make([]string, 0, len(msg.cs))
	for _, c := range msg.cs {
		svcs = append(svcs, c.Service)
		m.store.container(c.Name)
	}
	slices.Sort(svcs)
	for _, s := range svcs {
		m.store.service(s)
	}
	m.list.update(msg.cs, msg.at)
	m.loaded = true
	m.selectionChanged()
}

// ingest keeps a batch of lines and shows those the view wants.
func (m *model) ingest(msg logsMsg) {
	lines := msg.lines
	byTime := func(a, b LogLine) int { return a.Time.Compare(b.Time) }
	if !slices.IsSortedFunc(lines, byTime) {
		// The lines of one container come in order; those of several,
		// read by several goroutines, not quite.
		slices.SortStableFunc(lines, byTime)
	}
	for i := range lines {
		svc, n, old, evicted := m.store.add(&lines[i])
		if evicted {
			m.view.evicted(svc, &old)
		}
		m.view.added(svc, n, m.store.rings[svc].at(n))
	}
	m.dropped += msg.dropped
	m.view.compact(!m.view.follow)
}

// selectionChanged shows the logs of the service under the cursor, from
// their newest line.
func (m *model) selectionChanged() {
	svc := -1
	if c, ok := m.list.selected(); ok {
		svc = m.store.service(c.Service)
	}
	if svc == m.view.service {
		return
	}
	m.view.service = svc
	m.view.follow = true
	m.view.rebuild()
}

// setFilter keeps only the lines that match term ("" keeps all).
func (m *model) setFilter(term string) {
	m.view.filter = newMatcher(term)
	m.view.rebuild()
	m.view.settle(m.logRows(), m.lineHeight)
}

// setSearch searches for term from the bottom of the screen up.
func (m *model) setSearch(term string) {
	m.view.setSearch(term)
	if term == "" {
		return
	}
	_, last, _ := m.view.window(m.logRows(), m.lineHeight)
	i, _ := m.view.find(last-1, false)
	if i < 0 {
		m.note("no line matches " + quote(term))
		return
	}
	m.view.jump(i, m.logRows(), m.lineHeight)
	m.clearStatus()
}

// next jumps to the next match, forward (newer) or back.
func (m *model) next(forward bool) {
	v := m.view
	if v.search.empty() {
		m.note("no search: press / first")
		return
	}
	from := v.cur
	first, last, _ := v.window(m.logRows(), m.lineHeight)
	switch {
	case from >= 0 && forward:
		from++
	case from >= 0:
		from--
	case forward:
		from = first
	default:
		from = last - 1
	}
	i, wrapped := v.find(from, forward)
	if i < 0 {
		m.note("no line matches " + quote(v.search.term))
		return
	}
	v.jump(i, m.logRows(), m.lineHeight)
	switch {
	case wrapped && forward:
		m.note("search wrapped to the oldest line")
	case wrapped:
		m.note("search wrapped to the newest line")
	default:
		m.clearStatus()
	}
}

func (m *model) fail(text string) { m.status, m.statusErr = text, true }
func (m *model) note(text string) { m.status, m.statusErr = text, false }
func (m *model) clearStatus()     { m.status, m.statusErr = "", false }

func quote(s string) string { return "\"" + s + "\"" }
