package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/docker/go-units"
	"golang.org/x/term"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
)

// transferPrinter shows the progress of pulls and pushes. On a terminal it
// draws a block that it redraws in place, as docker compose does:
//
//	[+] Pulling 1/2
//	 ✔ web Pulled                                             1.2s
//	   ✔ a1b2c3d4e5f6 Pull complete                           0.9s
//	 ⠋ db Pulling                                             1.2s
//	   ⠋ 0123456789ab Downloading [====>        ] 12.3MB/45.6MB 0.5s
//
// Otherwise it prints a line each time an image or a layer changes state
// (" web Pulling", " a1b2c3d4e5f6 Pull complete", " web Pulled"), never the
// byte counts. With docker set, the lines are `docker pull`'s and `docker
// push`'s ("a1b2c3d4e5f6: Pull complete"): layers only, the command prints
// the rest.
type transferPrinter struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	docker bool
	quiet  bool
	// verb titles the block: "Pulling" or "Pushing".
	verb string
	// size is the terminal's width and height.
	size func() (int, int)
	now  func() time.Time

	images   []*imageProgress
	byImage  map[string]*imageProgress
	drawn    int
	lastDraw time.Time
}

// redrawEvery bounds how often byte counts alone redraw the block; a change
// of state redraws it at once.
const redrawEvery = 100 * time.Millisecond

var spinner = []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")

type imageProgress struct {
	// name is the service, and the image when the block has another
	// image of the service (a push of its build tags).
	name, ref  string
	state      project.EventKind
	text       string
	start, end time.Time
	layers     []*layerProgress
	byLayer    map[string]*layerProgress
}

type layerProgress struct {
	ev         image.LayerEvent
	start, end time.Time
}

// newTransferPrinter writes to w, drawing in place when w is a terminal.
func newTransferPrinter(w io.Writer) *transferPrinter {
	t := &transferPrinter{w: w, verb: "Pulling", now: time.Now, size: func() (int, int) { return 80, 24 }}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		t.tty = true
		t.size = func() (int, int) {
			w, h, err := term.GetSize(int(f.Fd()))
			if err != nil || w <= 0 || h <= 0 {
				return 80, 24
			}
			return w, h
		}
	}
	return t
}

// layer is the event of one layer of ref, as Store.Pull and Store.Push
// send it, for the image commands.
func (t *transferPrinter) layer(ref string) func(image.LayerEvent) {
	return func(ev image.LayerEvent) {
		t.event(project.ImageEvent{Service: ref, Image: ref, Kind: project.LayerStep, Layer: ev})
	}
}

// event takes one step of a pull or push; calls may come from several
// goroutines.
func (t *transferPrinter) event(ev project.ImageEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.quiet {
		return
	}
	now := t.now()
	line, changed := t.apply(ev, now)
	if !t.tty {
		if changed && line != "" {
			fmt.Fprintln(t.w, line)
		}
		return
	}
	if changed || now.Sub(t.lastDraw) >= redrawEvery {
		t.draw(now)
	}
}

// done ends the block: the next event starts a new one below whatever was
// printed meanwhile.
func (t *transferPrinter) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tty && t.drawn > 0 {
		t.draw(t.now())
	}
	t.images, t.byImage, t.drawn = nil, nil, 0
}

// apply records ev; changed says whether a state changed, line is what the
// plain output prints for it.
func (t *transferPrinter) apply(ev project.ImageEvent, now time.Time) (line string, changed bool) {
	key := ev.Service + "\x00" + ev.Image
	img := t.byImage[key]
	if img == nil {
		if t.byImage == nil {
			t.byImage = map[string]*imageProgress{}
		}
		img = &imageProgress{name: ev.Service, ref: ev.Image, state: project.Pulling, start: now, byLayer: map[string]*layerProgress{}}
		for _, other := range t.images {
			if other.name == ev.Service {
				img.name = ev.Service + " " + ev.Image
				break
			}
		}
		if ev.Kind == project.Pushing || ev.Kind == project.Pushed || ev.Layer.State == image.LayerPushing {
			img.state = project.Pushing
		}
		t.byImage[key] = img
		t.images = append(t.images, img)
		changed = true
	}
	if ev.Kind != project.LayerStep {
		changed = changed || img.state != ev.Kind
		img.state, img.text = ev.Kind, ev.Text
		if finished(img.state) {
			img.end = now
		}
		return t.imageLine(img), changed
	}
	l := img.byLayer[ev.Layer.Layer.String()]
	if l == nil {
		l = &layerProgress{start: now}
		img.byLayer[ev.Layer.Layer.String()] = l
		img.layers = append(img.layers, l)
		changed = true
	}
	changed = changed || l.ev.State != ev.Layer.State
	l.ev = ev.Layer
	if layerFinished(l.ev.State) && l.end.IsZero() {
		l.end = now
	}
	if t.docker {
		return ev.Layer.String(), changed
	}
	return " " + ev.Layer.ShortID() + " " + ev.Layer.State.String(), changed
}

// imageLine is an image's state as the plain output prints it.
func (t *transferPrinter) imageLine(img *imageProgress) string {
	if t.docker {
		return "" // the command tells the image's outcome
	}
	s := " " + img.name + " " + string(img.state)
	switch {
	case img.text == "":
	case img.state == project.Skipped:
		s += " - " + img.text
	default:
		s += " " + oneLine(img.text)
	}
	return s
}

func finished(k project.EventKind) bool {
	switch k {
	case project.Pulled, project.Pushed, project.Skipped, project.ErrorEvent, project.Warning:
		// Warning: the pull of an image that can be built failed.
		return true
	}
	return false
}

func layerFinished(s image.LayerState) bool {
	return s == image.LayerDone || s == image.LayerExists || s == image.LayerPushed
}

// draw replaces the block on the terminal with its state at now.
func (t *transferPrinter) draw(now time.Time) {
	width, height := t.size()
	lines := t.frame(now, width, height)
	var b strings.Builder
	if t.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\r", t.drawn)
	}
	for _, l := range lines {
		b.WriteString("\x1b[2K")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString("\x1b[J") // what a taller frame left below
	io.WriteString(t.w, b.String())
	t.drawn, t.lastDraw = len(lines), now
}

// frame is the block's lines at now, each shorter than width, and fewer
// than height: the cursor cannot go back up to lines scrolled off screen.
func (t *transferPrinter) frame(now time.Time, width, height int) []string {
	spin := string(spinner[int(now.UnixMilli()/100)%len(spinner)])
	var lines []string
	if !t.docker {
		n := 0
		for _, img := range t.images {
			if finished(img.state) {
				n++
			}
		}
		lines = append(lines, fmt.Sprintf("[+] %s %d/%d", t.verb, n, len(t.images)))
	}
	// Too tall: the layers of finished images go first, then the oldest lines.
	showDone := true
	if t.count() > height-1 {
		showDone = false
	}
	for _, img := range t.images {
		if !t.docker {
			mark, text := spin, img.name+" "+string(img.state)
			switch img.state {
			case project.ErrorEvent:
				mark = "✘"
			case project.Warning:
				mark = "!"
			case project.Pulled, project.Pushed, project.Skipped:
				mark = "✔"
			}
			switch {
			case img.text == "":
			case img.state == project.Skipped:
				text += " - " + img.text
			default:
				text += " " + oneLine(img.text)
			}
			lines = append(lines, timed(" "+mark+" "+text, since(img.start, img.end, now), width))
			if !showDone && finished(img.state) {
				continue
			}
		}
		for _, l := range img.layers {
			lines = append(lines, t.layerLine(l, spin, now, width))
		}
	}
	if limit := height - 1; limit > 0 && len(lines) > limit {
		lines = lines[len(lines)-limit:]
	}
	return lines
}

// count is how many lines the full block takes.
func (t *transferPrinter) count() int {
	n := 0
	if !t.docker {
		n = 1 + len(t.images)
	}
	for _, img := range t.images {
		n += len(img.layers)
	}
	return n
}

func (t *transferPrinter) layerLine(l *layerProgress, spin string, now time.Time, width int) string {
	status := l.ev.State.String()
	if (l.ev.State == image.LayerDownloading || l.ev.State == image.LayerPushing) && l.ev.Total > 0 {
		status += " " + progressBar(l.ev.Current, l.ev.Total)
	}
	if t.docker {
		return truncate(l.ev.ShortID()+": "+status, width)
	}
	mark := spin
	if layerFinished(l.ev.State) {
		mark = "✔"
	}
	return timed("   "+mark+" "+l.ev.ShortID()+" "+status, since(l.start, l.end, now), width)
}

// progressBar is docker's "[=====>     ] 12.3MB/45.6MB".
func progressBar(current, total int64) string {
	const width = 20
	n := int(float64(current) / float64(total) * width)
	n = min(max(n, 0), width-1)
	return "[" + strings.Repeat("=", n) + ">" + strings.Repeat(" ", width-1-n) + "] " +
		units.HumanSizeWithPrecision(float64(current), 3) + "/" + units.HumanSizeWithPrecision(float64(total), 3)
}

// since is the time from start to end, or to now while not ended.
func since(start, end, now time.Time) time.Duration {
	if end.IsZero() {
		end = now
	}
	return end.Sub(start)
}

// timed puts d at the right of a line of width columns, when there is room.
func timed(s string, d time.Duration, width int) string {
	secs := fmt.Sprintf("%.1fs", d.Seconds())
	room := width - 1 - len(secs) - 1
	n := utf8.RuneCountInString(s)
	if n > room {
		return truncate(s, width)
	}
	return s + strings.Repeat(" ", room-n+1) + secs
}

// truncate keeps s under width columns, so the terminal never wraps it.
func truncate(s string, width int) string {
	if width <= 1 || utf8.RuneCountInString(s) < width {
		return s
	}
	r := []rune(s)
	return string(r[:width-1])
}
