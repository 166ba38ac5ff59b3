package tui

import (
	"io"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
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

func newStyles(profile termenv.Profile) styles {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(profile)
	color := profile != termenv.Ascii
	fg := func(c string) lipgloss.Style { return r.NewStyle().Foreground(lipgloss.Color(c)) }
	st := styles{
		color:    color,
		header:   r.NewStyle().Bold(true),
		summary:  r.NewStyle(),
		title:    r.NewStyle().Bold(true),
		dim:      r.NewStyle().Faint(true),
		selected: r.NewStyle().Reverse(true),
		match:    r.NewStyle().Foreground(lipgloss.Color("0")).Background(lipgloss.Color("3")),
		current:  r.NewStyle().Foreground(lipgloss.Color("0")).Background(lipgloss.Color("9")).Bold(true),
		errText:  fg("9").Bold(true),
		note:     fg("3"),
		ok:       fg("2"),
		warn:     fg("3"),
		bad:      fg("1"),
		key:      r.NewStyle().Bold(true),
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
