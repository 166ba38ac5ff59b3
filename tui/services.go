package tui

// The service list: one row per container, under a row that stands for
// all of them, refreshed from Source.Containers.

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/docker/go-units"
)

type serviceList struct {
	rows []Container
	// cpu is the CPU use of each running container in percent of one
	// core, from the last two samples; prev is the last sample.
	cpu  map[string]float64
	prev map[string]cpuSample
	// cursor 0 is the row of all services, i the container rows[i-1];
	// offset is the first row on screen when they do not all fit.
	cursor int
	offset int
}

type cpuSample struct {
	nanos uint64
	at    time.Time
}

// update takes a new snapshot taken at at. The cursor stays on its
// container, or failing that on its service, as rows come and go.
func (l *serviceList) update(cs []Container, at time.Time) {
	cs = slices.Clone(cs)
	slices.SortStableFunc(cs, func(a, b Container) int { return cmp.Compare(a.Name, b.Name) })
	sel, hasSel := l.selected()
	cpu, prev := map[string]float64{}, map[string]cpuSample{}
	for _, c := range cs {
		if c.State != Running || c.CPUNanos == 0 {
			continue
		}
		prev[c.Name] = cpuSample{c.CPUNanos, at}
		if p, ok := l.prev[c.Name]; ok && at.After(p.at) && c.CPUNanos >= p.nanos {
			cpu[c.Name] = float64(c.CPUNanos-p.nanos) / float64(at.Sub(p.at)) * 100
		}
	}
	l.rows, l.cpu, l.prev = cs, cpu, prev
	if !hasSel {
		return
	}
	l.cursor = 0
	for i, c := range cs {
		if c.Name == sel.Name {
			l.cursor = i + 1
			return
		}
	}
	for i, c := range cs {
		if c.Service == sel.Service {
			l.cursor = i + 1
			return
		}
	}
}

// selected is the container under the cursor; false on the row of all.
func (l *serviceList) selected() (Container, bool) {
	if l.cursor < 1 || l.cursor > len(l.rows) {
		return Container{}, false
	}
	return l.rows[l.cursor-1], true
}

// move moves the cursor by delta rows, within the list.
func (l *serviceList) move(delta int) {
	l.cursor = max(min(l.cursor+delta, len(l.rows)), 0)
}

// summary is the line of counts above the list.
func (l *serviceList) summary() string {
	var running, healthy, exited, restarting, unhealthy, paused int
	for _, c := range l.rows {
		switch c.State {
		case Running:
			running++
		case Exited, Dead:
			exited++
		case Restarting:
			restarting++
		case Paused:
			paused++
		}
		switch c.Health {
		case Healthy:
			healthy++
		case Unhealthy:
			unhealthy++
		}
	}
	s := fmt.Sprintf("%d running · %d healthy · %d exited", running, healthy, exited)
	for _, x := range []struct {
		n    int
		what string
	}{{restarting, "restarting"}, {unhealthy, "unhealthy"}, {paused, "paused"}} {
		if x.n > 0 {
			s += fmt.Sprintf(" · %d %s", x.n, x.what)
		}
	}
	return s
}

// The columns of the list, in order; PORTS last, as it takes what is left.
const (
	colName = iota
	colStatus
	colHealth
	colCPU
	colMem
	colUp
	colRestarts
	colPorts
	nCols
)

var colHeads = [nCols]string{"NAME", "STATUS", "HEALTH", "CPU", "MEM", "UP", "RESTARTS", "PORTS"}

// cells are the texts of one container's row.
func (l *serviceList) cells(c Container, now time.Time) [nCols]string {
	var r [nCols]string
	r[colName] = c.Name
	r[colStatus] = statusText(c)
	r[colHealth] = string(c.Health)
	r[colCPU], r[colMem], r[colUp] = "-", "-", "-"
	if pct, ok := l.cpu[c.Name]; ok {
		r[colCPU] = strconv.FormatFloat(pct, 'f', 1, 64) + "%"
	}
	if c.MemoryBytes > 0 {
		r[colMem] = units.BytesSize(float64(c.MemoryBytes))
	}
	if (c.State == Running || c.State == Paused) && !c.StartedAt.IsZero() {
		r[colUp] = shortDuration(now.Sub(c.StartedAt))
	}
	r[colRestarts] = strconv.Itoa(c.Restarts)
	r[colPorts] = shortPorts(c.Ports)
	return r
}

// shortPorts drops the address of ports published on every address, as
// most are: "8080->80/tcp" for "0.0.0.0:8080->80/tcp".
func shortPorts(ports string) string {
	if ports == "" {
		return ""
	}
	parts := strings.Split(ports, ", ")
	for i, p := range parts {
		for _, any := range []string{"0.0.0.0:", ":::", "[::]:"} {
			p = strings.TrimPrefix(p, any)
		}
		parts[i] = p
	}
	return strings.Join(parts, ", ")
}

// statusText is the STATUS of `berth ps` without the health: running,
// exited (N), restarting (N), paused, created, dead (N).
func statusText(c Container) string {
	switch c.State {
	case Exited, Dead, Restarting:
		return fmt.Sprintf("%s (%d)", c.State, c.ExitCode)
	case "":
		return "unknown"
	}
	return string(c.State)
}

// shortDuration is an uptime in at most two units: 45s, 12m, 3h12m, 2d4h.
func shortDuration(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm", s/60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}

// layout decides the width of each column for a screen w wide; 0 hides a
// column. Columns that say least go first when the screen is narrow.
func layout(rows [][nCols]string, w int) [nCols]int {
	var widths [nCols]int
	allZero, allEmpty := true, true
	for i := range nCols {
		widths[i] = ansi.StringWidth(colHeads[i])
	}
	for _, r := range rows {
		for i, s := range r {
			widths[i] = max(widths[i], ansi.StringWidth(s))
		}
		allZero = allZero && r[colRestarts] == "0"
		allEmpty = allEmpty && r[colHealth] == ""
	}
	total := func() int {
		t, n := 2, 0 // the cursor's gutter
		for _, x := range widths {
			if x > 0 {
				t += x
				n++
			}
		}
		return t + 2*(n-1)
	}
	var drops []int
	if allZero {
		drops = append(drops, colRestarts)
	}
	if allEmpty {
		drops = append(drops, colHealth)
	}
	drops = append(drops, colUp, colRestarts, colMem, colCPU, colHealth)
	for _, c := range drops {
		if total() <= w {
			break
		}
		widths[c] = 0
	}
	if over := total() - w; over > 0 {
		widths[colPorts] -= over
		if widths[colPorts] < len("PORTS") {
			widths[colPorts] = 0
		}
	}
	if over := total() - w; over > 0 {
		widths[colName] = max(widths[colName]-over, 1)
	}
	return widths
}

// render draws the list in h lines (a header and the rows) w wide.
// colorOf is the colour index of a service.
func (l *serviceList) render(st *styles, w, h int, now time.Time, colorOf func(string) int) []string {
	cells := make([][nCols]string, 0, len(l.rows)+1)
	all := [nCols]string{colName: "all", colStatus: fmt.Sprintf("%d containers", len(l.rows))}
	if len(l.rows) == 1 {
		all[colStatus] = "1 container"
	}
	cells = append(cells, all)
	for _, c := range l.rows {
		cells = append(cells, l.cells(c, now))
	}
	widths := layout(cells, w)
	out := []string{st.dim.Render(pad(joinCells("  ", colHeads, widths), w))}

	visible := max(h-1, 1)
	if l.cursor < l.offset {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+visible {
		l.offset = l.cursor - visible + 1
	}
	l.offset = max(min(l.offset, len(cells)-visible), 0)
	for i := l.offset; i < len(cells) && len(out) < h; i++ {
		gutter := "  "
		if i == l.cursor {
			gutter = "> "
		}
		if i == l.cursor && st.color {
			out = append(out, st.selected.Render(pad(joinCells(gutter, cells[i], widths), w)))
			continue
		}
		if i == 0 || !st.color {
			out = append(out, pad(joinCells(gutter, cells[i], widths), w))
			continue
		}
		c := l.rows[i-1]
		var b strings.Builder
		b.WriteString(gutter)
		for j, s := range cells[i] {
			if widths[j] == 0 {
				continue
			}
			if j > 0 {
				b.WriteString("  ")
			}
			s = pad(s, widths[j])
			switch j {
			case colName:
				s = st.service(colorOf(c.Service)).Render(s)
			case colStatus:
				s = stateStyle(st, c).Render(s)
			case colHealth:
				s = healthStyle(st, c.Health).Render(s)
			}
			b.WriteString(s)
		}
		out = append(out, b.String())
	}
	return out
}

func stateStyle(st *styles, c Container) lipgloss.Style {
	switch {
	case c.State == Running:
		return st.ok
	case c.State == Restarting:
		return st.warn
	case c.State == Dead, c.State == Exited && c.ExitCode != 0:
		return st.bad
	}
	return st.dim
}

func healthStyle(st *styles, h Health) lipgloss.Style {
	switch h {
	case Healthy:
		return st.ok
	case Unhealthy:
		return st.bad
	case HealthStarting:
		return st.warn
	}
	return st.summary
}

// joinCells lays out one row of plain cells in the given widths.
func joinCells(gutter string, cells [nCols]string, widths [nCols]int) string {
	var b strings.Builder
	b.WriteString(gutter)
	first := true
	for j, s := range cells {
		if widths[j] == 0 {
			continue
		}
		if !first {
			b.WriteString("  ")
		}
		first = false
		b.WriteString(pad(s, widths[j]))
	}
	return b.String()
}

// pad cuts or pads plain text s to exactly w columns.
func pad(s string, w int) string {
	sw := ansi.StringWidth(s)
	if sw > w {
		s = ansi.Truncate(s, w, "…")
		sw = ansi.StringWidth(s)
	}
	return s + strings.Repeat(" ", max(w-sw, 0))
}
