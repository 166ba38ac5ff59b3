package tui

// Drawing. The screen, top to bottom: a line with the project and its
// counts, the service list, the log pane's title, the log pane, and the
// footer (status, prompt or question, then what q does). Only the lines
// on screen are drawn, whatever the history: View costs the same with 10
// lines kept or a million.

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/mattn/go-runewidth"
)

// Below this the UI says the terminal is too small instead of drawing.
const minWidth, minHeight = 40, 10

// The fixed lines: top line, log title, footer.
const chromeLines = 3

// layout is the height of the service list (its header included) and of
// the log pane.
func (m *model) layout() (listH, logH int) {
	avail := m.height - chromeLines
	listH = min(len(m.list.rows)+2, max(3, avail/3))
	return listH, max(avail-listH, 0)
}

func (m *model) logRows() int { _, h := m.layout(); return h }

// View is the screen as bubbletea shows it: on the alternate screen, with
// the mouse reporting clicks and the wheel (and drags, which nothing
// uses), and no cursor.
func (m *model) View() tea.View {
	v := tea.NewView(m.draw())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	return v
}

// draw is the screen's text, each line the width of the screen at most.
func (m *model) draw() string {
	if m.width <= 0 || m.height <= 0 {
		return ""
	}
	if m.width < minWidth || m.height < minHeight {
		return pad("terminal too small: "+strconv.Itoa(m.width)+"×"+strconv.Itoa(m.height)+", need "+
			strconv.Itoa(minWidth)+"×"+strconv.Itoa(minHeight), m.width)
	}
	lines := make([]string, 0, m.height)
	lines = append(lines, m.topLine())
	if m.mode == modeHelp {
		// The help takes the list's room too: it fits whole in 80×24.
		lines = append(lines, m.helpLines(m.height-2)...)
		return strings.Join(append(lines, m.footer()), "\n")
	}
	listH, logH := m.layout()
	lines = append(lines, m.list.render(&m.st, m.width, listH, m.opts.Now(), m.colorOf)...)
	for len(lines) < 1+listH {
		lines = append(lines, "")
	}
	lines = append(lines, m.logTitle(logH))
	lines = append(lines, m.logLines(logH)...)
	lines = append(lines, m.footer())
	return strings.Join(lines, "\n")
}

// colorOf is the colour index of a service: the order the UI met it in.
func (m *model) colorOf(service string) int {
	if i, ok := m.store.svcOf[service]; ok {
		return i
	}
	return -1
}

func (m *model) topLine() string {
	title := "berth"
	if m.opts.Project != "" {
		title += " · " + m.opts.Project
	}
	sum := "loading…"
	if m.loaded {
		sum = m.list.summary()
	}
	w := ansi.StringWidth(title)
	return m.st.header.Render(title) + "   " + m.st.summary.Render(pad(sum, max(m.width-w-3, 0)))
}

// logTitle is the rule above the logs: what they show and how.
func (m *model) logTitle(rows int) string {
	v := m.view
	name := "all services"
	if v.service >= 0 {
		name = m.store.svcs[v.service]
	}
	parts := []string{"logs: " + name}
	if v.follow {
		parts = append(parts, "following")
	} else if n := v.newLines(rows, m.lineHeight); n > 0 {
		parts = append(parts, "paused, "+plural(n, "new line")+" (G follows)")
	} else {
		parts = append(parts, "paused (G follows)")
	}
	if !v.filter.empty() {
		parts = append(parts, "filter "+quote(v.filter.term)+": "+plural(v.size(), "line"))
	}
	if !v.search.empty() {
		s := "/" + v.search.term + " "
		switch {
		case v.matches == 0:
			s += "no match"
		case v.ordinal > 0 && v.cur >= 0:
			s += strconv.Itoa(v.ordinal) + " of " + strconv.Itoa(v.matches)
		default:
			s += plural(v.matches, "match")
		}
		parts = append(parts, s)
	}
	if m.timestamps {
		parts = append(parts, "time")
	}
	if m.wrap {
		parts = append(parts, "wrap")
	}
	if m.dropped > 0 {
		parts = append(parts, plural(m.dropped, "line")+" not shown (too fast; berth logs has them)")
	}
	text := ansi.Truncate("── "+strings.Join(parts, " · ")+" ", m.width, "…")
	text += strings.Repeat("─", max(m.width-ansi.StringWidth(text), 0))
	return m.st.title.Render(text)
}

func plural(n int, what string) string {
	s := strconv.Itoa(n) + " " + what
	if n == 1 {
		return s
	}
	if strings.HasSuffix(what, "ch") {
		return s + "es"
	}
	return s + "s"
}

// logGeometry is the width of the parts of a log line: the name with its
// padding and separator, the timestamp, and the text.
func (m *model) logGeometry() (nameW, tsW, textW int) {
	nameW = min(max(m.store.nameWidth, 1), max(m.width/4, 8))
	if m.timestamps {
		tsW = len("15:04:05.000 ")
	}
	textW = m.width - nameW - len("  | ") - tsW
	if textW < 10 {
		nameW = max(nameW-(10-textW), 1)
		textW = max(m.width-nameW-len("  | ")-tsW, 1)
	}
	return nameW, tsW, textW
}

// lineHeight is how many rows line r takes: 1, or more when wrapped; 0
// for a line that has left its ring.
func (m *model) lineHeight(r ref) int {
	if !m.view.ok(r) {
		return 0
	}
	if !m.wrap {
		return 1
	}
	e := m.view.entry(r)
	_, _, textW := m.logGeometry()
	if !e.wide {
		return max((len(e.text)+textW-1)/textW, 1)
	}
	return len(cut(e.text, textW, true))
}

// logLines draws the log pane in rows lines.
func (m *model) logLines(rows int) []string {
	v := m.view
	out := make([]string, 0, rows)
	first, last, skip := v.window(rows, m.lineHeight)
	nameW, tsW, textW := m.logGeometry()
	for i := first; i < last; i++ {
		r := v.refs[i]
		if !v.ok(r) {
			continue
		}
		drawn := m.logLine(v.entry(r), r.svc(), i == v.cur, nameW, tsW, textW)
		if i == first {
			drawn = drawn[min(skip, len(drawn)):]
		}
		out = append(out, drawn...)
	}
	out = out[:min(len(out), rows)]
	if len(out) == 0 && rows > 0 {
		switch {
		case !v.filter.empty():
			out = append(out, m.st.dim.Render("no line matches the filter "+quote(v.filter.term)))
		case m.loaded:
			out = append(out, m.st.dim.Render("no output yet"))
		}
	}
	for len(out) < rows {
		out = append(out, "")
	}
	return out
}

// logLine draws one line as one row, or more when wrapped: "web-1  | text",
// the name in its service's colour, matches of the search highlighted. The
// current match's line says ">" instead of "|", for the screens without
// colour.
func (m *model) logLine(e *entry, svc int, current bool, nameW, tsW, textW int) []string {
	sep := "  | "
	if current {
		sep = "  > "
	}
	prefix := m.st.service(svc).Render(pad(m.store.ctrs[e.ctr], nameW) + sep)
	if tsW > 0 {
		t := time.Unix(0, e.time).In(m.opts.Location).Format("15:04:05.000")
		prefix += m.st.dim.Render(t) + " "
	}
	ends := cut(e.text, textW, m.wrap)
	var spans [][2]int
	if !m.view.search.empty() {
		spans = m.view.search.spans(e.text)
	}
	hl := m.st.match
	if current {
		hl = m.st.current
	}
	out := make([]string, 0, len(ends))
	start := 0
	blank := strings.Repeat(" ", nameW+len(sep)+tsW)
	for k, end := range ends {
		var b strings.Builder
		if k == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteString(blank)
		}
		pos := start
		for _, s := range spans {
			lo, hi := max(s[0], start), min(s[1], end)
			if lo >= hi {
				continue
			}
			b.WriteString(e.text[pos:lo])
			b.WriteString(hl.Render(e.text[lo:hi]))
			pos = hi
		}
		b.WriteString(e.text[pos:end])
		if !m.wrap && end < len(e.text) {
			b.WriteString("…")
		}
		out = append(out, b.String())
		start = end
	}
	return out
}

// cut splits text into rows of at most w columns, as the byte offsets
// where each row ends. Without wrap there is one row, cut short to leave
// room for "…" when text is wider than w.
func cut(text string, w int, wrap bool) []int {
	w = max(w, 1)
	if !wrap {
		if len(text) <= w && utf8.RuneCountInString(text) == len(text) {
			return []int{len(text)}
		}
		if runewidth.StringWidth(text) <= w {
			return []int{len(text)}
		}
		col := 0
		for i, r := range text {
			if col+runewidth.RuneWidth(r) > w-1 {
				return []int{i}
			}
			col += runewidth.RuneWidth(r)
		}
		return []int{len(text)}
	}
	var ends []int
	col := 0
	for i, r := range text {
		rw := runewidth.RuneWidth(r)
		if col+rw > w && col > 0 {
			ends = append(ends, i)
			col = 0
		}
		col += rw
	}
	return append(ends, len(text))
}

// helpLines draws the key help in rows lines.
func (m *model) helpLines(rows int) []string {
	out := []string{m.st.title.Render("keys")}
	keyW := 0
	for _, h := range help {
		keyW = max(keyW, ansi.StringWidth(h[0]))
	}
	for _, h := range help {
		out = append(out, ansi.Truncate("  "+m.st.key.Render(pad(h[0], keyW))+"  "+h[1], m.width, "…"))
	}
	out = append(out, ansi.Truncate("  "+m.st.key.Render(pad("q ctrl+c", keyW))+"  "+m.opts.Footer, m.width, "…"))
	if len(out) > rows {
		// Two columns when one does not fit.
		half := (len(out) + 1) / 2
		colW := m.width / 2
		two := make([]string, 0, half)
		for i := range half {
			l := pad(ansi.Truncate(out[i], colW, "…"), colW)
			if i+half < len(out) {
				l += ansi.Truncate(out[i+half], m.width-colW, "…")
			}
			two = append(two, l)
		}
		out = two
	}
	out = out[:min(len(out), rows)]
	for len(out) < rows {
		out = append(out, "")
	}
	return out
}

// footer is the bottom line: the prompt, the question or the status on
// the left, what q does and where help is on the right.
func (m *model) footer() string {
	right := m.opts.Footer + " · ? help"
	var left string
	switch m.mode {
	case modeSearch:
		left = "/" + string(m.input) + "█"
	case modeFilter:
		left = "filter: " + string(m.input) + "█"
	case modeConfirm:
		left = m.st.note.Render(strings.ToUpper(m.asked.action.String()[:1]) + m.asked.action.String()[1:] +
			" " + targetName(m.asked.service) + "? (y/n)")
	case modeHelp:
		left = "any key closes the help"
	default:
		switch {
		case m.status != "" && m.statusErr:
			left = m.st.errText.Render("error: " + m.status)
		case m.status != "":
			left = m.st.note.Render(m.status)
		case m.focus == focusLogs:
			left = m.st.dim.Render("↑↓ scroll · tab list · / search · f filter")
		default:
			left = m.st.dim.Render("↑↓ select · tab logs · / search · f filter")
		}
	}
	rw, lw := ansi.StringWidth(right), ansi.StringWidth(left)
	if rw+2 > m.width || (m.status != "" || m.mode != modeNormal) && lw+rw+1 > m.width {
		// What the user must read wins over the reminder.
		return ansi.Truncate(left, m.width, "…")
	}
	lw = m.width - rw - 1
	left = ansi.Truncate(left, lw, "…")
	return left + strings.Repeat(" ", lw-ansi.StringWidth(left)+1) + m.st.dim.Render(right)
}
