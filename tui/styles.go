package tui

import (
	"charm.land/lipgloss/v2"
)

// The colours docker compose and `berth up` cycle through for log
// prefixes, as ANSI colour numbers: cyan, yellow, green, magenta, blue and
// their bright forms.
var serviceColors = []string{"6", "3", "2", "5", "4", "14", "11", "10", "13", "12"}

// styles are every look the UI uses. Without colour (NO_COLOR, or a
// terminal that has none) every style is plain and the screen carries no
// escape code at all: the selected row and the current match are marked
// by characters instead (">").
type styles struct {
	color bool

	header, summary lipgloss.Style
	title, dim      lipgloss.Style
	selected        lipgloss.Style
	match, current  lipgloss.Style
	errText, note   lipgloss.Style
	ok, warn, bad   lipgloss.Style
	key             lipgloss.Style
	services        []lipgloss.Style
}

// newStyles makes the styles, in colour or plain. lipgloss v2 renders a
// style whole and leaves the terminal's colour profile to bubbletea's
// renderer, which would still draw bold and reverse without colour: so
// plain is decided here, and a plain style adds nothing at all.
func newStyles(color bool) styles {
	plain := lipgloss.NewStyle()
	if !color {
		st := styles{
			header: plain, summary: plain, title: plain, dim: plain, selected: plain,
			match: plain, current: plain, errText: plain, note: plain,
			ok: plain, warn: plain, bad: plain, key: plain,
		}
		for range serviceColors {
			st.services = append(st.services, plain)
		}
		return st
	}
	fg := func(c string) lipgloss.Style { return plain.Foreground(lipgloss.Color(c)) }
	st := styles{
		color:    true,
		header:   plain.Bold(true),
		summary:  plain,
		title:    plain.Bold(true),
		dim:      plain.Faint(true),
		selected: plain.Reverse(true),
		match:    fg("0").Background(lipgloss.Color("3")),
		current:  fg("0").Background(lipgloss.Color("9")).Bold(true),
		errText:  fg("9").Bold(true),
		note:     fg("3"),
		ok:       fg("2"),
		warn:     fg("3"),
		bad:      fg("1"),
		key:      plain.Bold(true),
	}
	for _, c := range serviceColors {
		st.services = append(st.services, fg(c))
	}
	return st
}

// service is the style of the service with colour index i.
func (s *styles) service(i int) lipgloss.Style {
	if i < 0 {
		return s.summary
	}
	return s.services[i%len(s.services)]
}
