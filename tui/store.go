package tui

// What the UI keeps of the logs: a ring of lines per service, so that a
// service that logs 10,000 lines a second pushes out its own history and
// nobody else's. The on-disk log is the record; this is a window on it.

import (
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// entry is one kept line: 40 bytes and its text.
type entry struct {
	// seq orders the lines of all services as they arrived.
	seq  uint64
	time int64 // Unix nanoseconds
	text string
	ctr  uint32 // index in store.ctrs
	err  bool   // written to stderr
	// wide: the text is not all ASCII, so its width is not its length.
	wide bool
}

// ring keeps the last size lines of one service. Lines are numbered from
// 0 as they arrive; first and next bound the numbers still kept.
type ring struct {
	buf   []entry
	size  int
	first uint64
	next  uint64
}

// push adds e and returns the line it pushed out, if the ring was full.
func (r *ring) push(e entry) (old entry, evicted bool) {
	if len(r.buf) < r.size {
		if len(r.buf) == cap(r.buf) {
			// Grow by hand: append would overshoot size.
			nb := make([]entry, len(r.buf), min(max(2*cap(r.buf), 64), r.size))
			copy(nb, r.buf)
			r.buf = nb
		}
		r.buf = append(r.buf, e)
	} else {
		i := r.next % uint64(r.size)
		old, evicted = r.buf[i], true
		r.buf[i] = e
		r.first++
	}
	r.next++
	return old, evicted
}

// has reports whether line n is still kept.
func (r *ring) has(n uint64) bool { return n >= r.first && n < r.next }

// at is line n; the caller checks has(n).
func (r *ring) at(n uint64) *entry { return &r.buf[n%uint64(r.size)] }

// store holds the rings and the names the lines refer to.
type store struct {
	size  int
	rings []*ring
	// svcs are the services in the order the UI first heard of them,
	// which is also the order of their colours.
	svcs  []string
	svcOf map[string]int
	ctrs  []string
	ctrOf map[string]uint32
	// nameWidth is the longest container name: log prefixes pad to it.
	nameWidth int
	seq       uint64
	// last is the container of the previous line: consecutive lines
	// mostly come from one container, and a string compare is cheaper
	// than a map lookup.
	last    string
	lastCtr uint32
	lastSvc int
}

func newStore(size int) *store {
	return &store{size: size, svcOf: map[string]int{}, ctrOf: map[string]uint32{}, lastSvc: -1}
}

// service is the index of a service's ring, made on first use.
func (s *store) service(name string) int {
	if i, ok := s.svcOf[name]; ok {
		return i
	}
	s.svcOf[name] = len(s.svcs)
	s.svcs = append(s.svcs, name)
	s.rings = append(s.rings, &ring{size: s.size})
	return len(s.svcs) - 1
}

// container is the index of a container's name, made on first use.
func (s *store) container(name string) uint32 {
	if i, ok := s.ctrOf[name]; ok {
		return i
	}
	i := uint32(len(s.ctrs))
	s.ctrOf[name] = i
	s.ctrs = append(s.ctrs, name)
	s.nameWidth = max(s.nameWidth, ansi.StringWidth(name))
	return i
}

// add keeps l in its service's ring. It returns where it went and the
// line it pushed out, if any.
func (s *store) add(l *LogLine) (svc int, n uint64, old entry, evicted bool) {
	var ctr uint32
	if s.lastSvc >= 0 && l.Container == s.last && s.svcs[s.lastSvc] == l.Service {
		ctr, svc = s.lastCtr, s.lastSvc
	} else {
		ctr, svc = s.container(l.Container), s.service(l.Service)
		s.last, s.lastCtr, s.lastSvc = l.Container, ctr, svc
	}
	r := s.rings[svc]
	n = r.next
	text, wide := clean(l.Text)
	old, evicted = r.push(entry{seq: s.seq, time: l.Time.UnixNano(), text: text, ctr: ctr, err: l.Stream == "stderr", wide: wide})
	s.seq++
	return svc, n, old, evicted
}

// clean makes a line safe to draw: a program's own colours and cursor
// moves would wreck the screen, and a tab or an invalid byte has no
// fixed width. Most lines are plain ASCII and go through untouched; wide
// tells the others.
func clean(text string) (_ string, wide bool) {
	plain := true
	for i := 0; i < len(text); i++ {
		if c := text[i]; c < 0x20 || c >= 0x7f {
			plain = false
			break
		}
	}
	if plain {
		return text, false
	}
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	if strings.IndexByte(text, 0x1b) >= 0 || strings.ContainsRune(text, 0x9b) {
		text = ansi.Strip(text)
	}
	var b strings.Builder
	col := 0
	for _, r := range text {
		switch {
		case r == '\t':
			n := 8 - col%8
			b.WriteString("        "[:n])
			col += n
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			// Other control characters (\r, bells, C1) draw nothing.
		default:
			b.WriteRune(r)
			col++
		}
	}
	return b.String(), true
}
