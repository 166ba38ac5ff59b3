package tui

// What keys and the mouse do, and the help that tells it.

import (
	"unicode"

	tea "charm.land/bubbletea/v2"
)

// help is the key help, as `?` shows it: keys, then what they do.
var help = [][2]string{
	{"↑ ↓  k j", "select a container (list) or scroll (logs)"},
	{"tab", "move between the list and the logs"},
	{"pgup pgdn", "scroll the logs a page (also ctrl+b ctrl+f)"},
	{"ctrl+u ctrl+d", "scroll the logs half a page"},
	{"home g", "go to the oldest line kept (stops following)"},
	{"end G", "go to the newest line and follow again"},
	{"/", "search; n and N go to the next and previous match"},
	{"f", "filter: keep only the lines that match (empty: all)"},
	{"esc", "end the search, then the filter"},
	{"t  w", "timestamps on/off, wrapping on/off"},
	{"r  s  u", "restart, stop (asks first), start the service"},
	{"e", "open a shell in the selected container"},
	{"mouse", "wheel scrolls, a click selects"},
	{"?", "this help (any key closes it)"},
}

// keys handles a key press. Keys come one message each, however many
// came in one read (typed fast, or sent by tmux send-keys), but an escape
// with a key after it in one read comes as that key with alt. berth binds
// no alt keys, so alt+x is esc, x.
func (m *model) keys(k tea.KeyPressMsg) tea.Cmd {
	if !k.Mod.Contains(tea.ModAlt) {
		return m.key(k)
	}
	esc := m.key(tea.KeyPressMsg{Code: tea.KeyEscape})
	return tea.Batch(esc, m.key(withoutAlt(k)))
}

// withoutAlt is k without alt, with the text the key types back: the
// decoder leaves the text out of a key with alt.
func withoutAlt(k tea.KeyPressMsg) tea.KeyPressMsg {
	k.Mod &^= tea.ModAlt
	if k.Text != "" || !unicode.IsPrint(k.Code) {
		return k
	}
	switch k.Mod &^ (tea.ModCapsLock | tea.ModNumLock | tea.ModScrollLock) {
	case 0:
		k.Text = string(k.Code)
	case tea.ModShift:
		k.Text = string(unicode.ToUpper(k.Code))
		if k.ShiftedCode != 0 {
			k.Text = string(k.ShiftedCode)
		}
	}
	return k
}

// paste types pasted text into the search or filter line; elsewhere a
// paste means nothing.
func (m *model) paste(text string) {
	if m.mode == modeSearch || m.mode == modeFilter {
		m.typeText(text)
	}
}

// key handles one key press.
func (m *model) key(k tea.KeyPressMsg) tea.Cmd {
	if k.String() == "ctrl+c" {
		m.exit, m.quit = Interrupt, true
		return tea.Quit
	}
	switch m.mode {
	case modeHelp:
		m.mode = modeNormal
		return nil
	case modeConfirm:
		m.mode = modeNormal
		if s := k.String(); s == "y" || s == "Y" {
			return m.act(m.asked.action, m.asked.service)
		}
		m.note(m.asked.action.String() + " cancelled")
		return nil
	case modeSearch, modeFilter:
		m.edit(k)
		return nil
	}

	rows := m.logRows()
	switch k.String() {
	case "q":
		m.exit, m.quit = Quit, true
		return tea.Quit
	case "?":
		m.mode = modeHelp
	case "tab", "shift+tab":
		m.focus = 1 - m.focus
	case "up", "k":
		if m.focus == focusList {
			m.list.move(-1)
			m.selectionChanged()
		} else {
			m.view.scroll(-1, rows, m.lineHeight)
		}
	case "down", "j":
		if m.focus == focusList {
			m.list.move(1)
			m.selectionChanged()
		} else {
			m.view.scroll(1, rows, m.lineHeight)
		}
	case "pgup", "ctrl+b":
		m.view.scroll(-max(rows-1, 1), rows, m.lineHeight)
	case "pgdown", "ctrl+f", "space":
		m.view.scroll(max(rows-1, 1), rows, m.lineHeight)
	case "ctrl+u":
		m.view.scroll(-max(rows/2, 1), rows, m.lineHeight)
	case "ctrl+d":
		m.view.scroll(max(rows/2, 1), rows, m.lineHeight)
	case "home", "g":
		m.view.toTop(rows, m.lineHeight)
	case "end", "G":
		m.view.toEnd()
	case "/":
		m.mode, m.input = modeSearch, nil
	case "f":
		m.mode, m.input = modeFilter, []rune(m.view.filter.term)
	case "n":
		m.next(true)
	case "N":
		m.next(false)
	case "esc":
		switch {
		case !m.view.search.empty():
			m.view.setSearch("")
		case !m.view.filter.empty():
			m.setFilter("")
		}
		m.clearStatus()
	case "t":
		m.timestamps = !m.timestamps
	case "w":
		m.wrap = !m.wrap
	case "r":
		return m.act(Restart, m.target())
	case "u":
		return m.act(Start, m.target())
	case "s":
		m.asked = acted{action: Stop, service: m.target()}
		m.mode = modeConfirm
	case "e":
		return m.openShell()
	}
	return nil
}

// maxInput bounds a search or filter term.
const maxInput = 200

// edit types into the search or filter line; enter applies it, esc
// leaves it.
func (m *model) edit(k tea.KeyPressMsg) {
	if k.Text != "" {
		m.typeText(k.Text)
		return
	}
	switch k.String() {
	case "enter":
		term := string(m.input)
		if m.mode == modeSearch {
			m.mode = modeNormal
			m.setSearch(term)
		} else {
			m.mode = modeNormal
			m.setFilter(term)
		}
	case "esc":
		m.mode = modeNormal
	case "backspace":
		if len(m.input) > 0 {
			m.input = m.input[:len(m.input)-1]
		}
	case "ctrl+u":
		m.input = nil
	}
}

// typeText adds text to the search or filter line.
func (m *model) typeText(text string) {
	for _, r := range text {
		// A term is one line: the rest of a paste of several lines is
		// not part of it.
		if r == '\n' || r == '\r' {
			return
		}
		if r >= ' ' && len(m.input) < maxInput {
			m.input = append(m.input, r)
		}
	}
}

// mouse scrolls with the wheel and selects with a click: in the list, a
// row; anywhere in the logs, the log pane's focus.
func (m *model) mouse(msg tea.MouseMsg) {
	ev := msg.Mouse()
	listH, _ := m.layout()
	// The list starts under the top line and its header.
	inList := ev.Y >= 1 && ev.Y < 1+listH
	switch msg.(type) {
	case tea.MouseWheelMsg:
		var delta int
		switch ev.Button {
		case tea.MouseWheelUp:
			delta = -1
		case tea.MouseWheelDown:
			delta = 1
		default:
			return
		}
		if inList {
			m.list.move(delta)
			m.selectionChanged()
		} else {
			m.view.scroll(3*delta, m.logRows(), m.lineHeight)
		}
	case tea.MouseClickMsg:
		if ev.Button != tea.MouseLeft {
			return
		}
		if !inList {
			m.focus = focusLogs
			return
		}
		m.focus = focusList
		if row := ev.Y - 2; row >= 0 {
			m.list.cursor = min(m.list.offset+row, len(m.list.rows))
			m.selectionChanged()
		}
	}
}
