package main

import (
	"bufio"
	"io"
	"strconv"
	"sync"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime"
)

// The colours docker compose cycles through for log prefixes.
var prefixColors = []string{"36", "33", "32", "35", "34", "96", "93", "92", "95", "94"}

// logPrinter writes "web-1  | line" lines, one colour per service, padded
// to the longest name, from any number of goroutines.
type logPrinter struct {
	mu         sync.Mutex
	w          *bufio.Writer
	color      bool
	prefix     bool
	timestamps bool
	width      int
	colorOf    map[string]string
}

func newLogPrinter(w io.Writer, cs []*runtime.Container, color, prefix, timestamps bool) *logPrinter {
	p := &logPrinter{w: bufio.NewWriterSize(w, 64<<10), color: color, prefix: prefix, timestamps: timestamps, colorOf: map[string]string{}}
	var services []string
	for _, c := range cs {
		if n := len(displayName(c)); n > p.width {
			p.width = n
		}
		svc := c.Spec.Labels[project.LabelService]
		if _, ok := p.colorOf[svc]; !ok {
			p.colorOf[svc] = ""
			services = append(services, svc)
		}
	}
	for i, s := range services {
		p.colorOf[s] = prefixColors[i%len(prefixColors)]
	}
	return p
}

// displayName is how logs name a container: "web-1" (service and number),
// or its container_name when it has one.
func displayName(c *runtime.Container) string { return project.DisplayName(c) }

func (p *logPrinter) writePrefix(c *runtime.Container) {
	name := displayName(c)
	if p.color {
		p.w.WriteString("\x1b[" + p.colorOf[c.Spec.Labels[project.LabelService]] + "m")
	}
	p.w.WriteString(name)
	for i := len(name); i < p.width; i++ {
		p.w.WriteByte(' ')
	}
	p.w.WriteString("  | ")
	if p.color {
		p.w.WriteString("\x1b[0m")
	}
}

// line prints one log line; flush decides whether to write it out now
// (following) or let the buffer fill (reading a whole log).
func (p *logPrinter) line(c *runtime.Container, e runtime.LogEntry, flush bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.prefix {
		p.writePrefix(c)
	}
	if p.timestamps {
		var buf [40]byte
		p.w.Write(e.Time.UTC().AppendFormat(buf[:0], "2006-01-02T15:04:05.000000000Z"))
		p.w.WriteByte(' ')
	}
	p.w.Write(e.Text)
	p.w.WriteByte('\n')
	if flush {
		return p.w.Flush()
	}
	return nil
}

// note prints a line of berth's own about a container ("web-1 exited with code 0").
func (p *logPrinter) note(c *runtime.Container, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	name := displayName(c)
	if p.color {
		p.w.WriteString("\x1b[" + p.colorOf[c.Spec.Labels[project.LabelService]] + "m" + name + "\x1b[0m " + text + "\n")
	} else {
		p.w.WriteString(name + " " + text + "\n")
	}
	p.w.Flush()
}

func (p *logPrinter) flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.w.Flush()
}

// exitText is docker compose's "exited with code N".
func exitText(st runtime.State) string {
	return "exited with code " + strconv.Itoa(st.ExitCode)
}
