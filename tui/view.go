package tui

// The log pane's logic, apart from drawing: which kept lines it shows
// (one service or all, through the filter), where it is scrolled to, and
// the search. It holds references to lines, not lines, so switching
// service or filter rebuilds a list of numbers, and a new line costs an
// append.

import "sort"

// ref names a kept line: its service's ring (top 16 bits) and its number
// there.
type ref uint64

func mkref(svc int, n uint64) ref { return ref(uint64(svc)<<48 | n) }

func (r ref) svc() int  { return int(r >> 48) }
func (r ref) n() uint64 { return uint64(r) & (1<<48 - 1) }

type logView struct {
	st *store
	// service is the ring shown, or -1 for all of them interleaved.
	service int
	filter  matcher
	// refs are the lines shown, in the order they arrived. Some may have
	// left their ring since (stale): compact drops them.
	refs  []ref
	stale int
	// follow keeps the newest line at the bottom; otherwise top is the
	// index in refs of the first line on screen, and the lines from
	// pausedSeq on came since following stopped.
	follow    bool
	top       int
	pausedSeq uint64
	search    matcher
	// cur is the index in refs of the current match (-1: none), curSeq
	// its line's seq, and ordinal its rank among the matches, kept as
	// lines before it leave.
	cur     int
	curSeq  uint64
	ordinal int
	// matches counts the lines in refs that match search.
	matches int
}

func newLogView(st *store) *logView {
	return &logView{st: st, service: -1, follow: true, cur: -1}
}

func (v *logView) shows(svc int, e *entry) bool {
	return (v.service < 0 || v.service == svc) && (v.filter.empty() || v.filter.match(e.text))
}

// added takes a line that arrived in ring svc as number n.
func (v *logView) added(svc int, n uint64, e *entry) {
	if !v.shows(svc, e) {
		return
	}
	v.refs = append(v.refs, mkref(svc, n))
	if !v.search.empty() && v.search.match(e.text) {
		v.matches++
	}
}

// evicted takes a line that left ring svc.
func (v *logView) evicted(svc int, e *entry) {
	if !v.shows(svc, e) {
		return
	}
	v.stale++
	if v.search.empty() || !v.search.match(e.text) {
		return
	}
	v.matches--
	switch {
	case v.cur < 0:
	case e.seq == v.curSeq:
		v.cur, v.ordinal = -1, 0
	case e.seq < v.curSeq && v.ordinal > 0:
		v.ordinal--
	}
}

// compact drops stale refs: always when force (a paused view counts its
// new lines exactly), else once they are a quarter of the list, which
// keeps the work per line constant and the list within 4/3 of the lines.
func (v *logView) compact(force bool) {
	if v.stale == 0 || (!force && v.stale*4 < len(v.refs)) {
		return
	}
	k, top, cur := 0, -1, -1
	for i, r := range v.refs {
		if i == v.top {
			top = k
		}
		if !v.ok(r) {
			continue
		}
		if i == v.cur {
			cur = k
		}
		v.refs[k] = r
		k++
	}
	if top < 0 {
		top = k
	}
	v.refs, v.stale = v.refs[:k], 0
	v.top = min(top, max(k-1, 0))
	v.cur = cur
	if cur < 0 {
		v.ordinal = 0
	}
}

// rebuild lists the lines to show afresh, after the service or the
// filter changed. The line at the top and the current match stay where
// they are if they are still shown.
func (v *logView) rebuild() {
	v.compact(true)
	hadCur := v.cur >= 0
	topSeq, hadTop := uint64(0), !v.follow && v.top < len(v.refs)
	if hadTop {
		topSeq = v.entry(v.refs[v.top]).seq
	}
	v.refs, v.stale, v.matches = v.refs[:0], 0, 0
	if v.service >= 0 {
		r := v.st.rings[v.service]
		for n := r.first; n < r.next; n++ {
			if e := r.at(n); v.filter.empty() || v.filter.match(e.text) {
				v.refs = append(v.refs, mkref(v.service, n))
			}
		}
	} else {
		v.merge()
	}
	if !v.search.empty() {
		for _, r := range v.refs {
			if v.search.match(v.entry(r).text) {
				v.matches++
			}
		}
	}
	v.top = 0
	if hadTop {
		v.top = v.indexOfSeq(topSeq)
	}
	v.cur, v.ordinal = -1, 0
	if !hadCur {
		return
	}
	if i := v.indexOfSeq(v.curSeq); i < len(v.refs) && v.entry(v.refs[i]).seq == v.curSeq {
		v.cur = i
		v.ordinal = v.rank(i)
	}
}

// merge lists the lines of every ring in the order they arrived: a k-way
// merge on seq, with few rings.
func (v *logView) merge() {
	rings := v.st.rings
	next := make([]uint64, len(rings))
	for i, r := range rings {
		next[i] = r.first
	}
	for {
		best, bestSeq := -1, uint64(0)
		for i, r := range rings {
			if next[i] < r.next {
				if s := r.at(next[i]).seq; best < 0 || s < bestSeq {
					best, bestSeq = i, s
				}
			}
		}
		if best < 0 {
			return
		}
		n := next[best]
		next[best]++
		if e := rings[best].at(n); v.filter.empty() || v.filter.match(e.text) {
			v.refs = append(v.refs, mkref(best, n))
		}
	}
}

// ok reports whether line r is still kept; entry is the line.
func (v *logView) ok(r ref) bool      { return v.st.rings[r.svc()].has(r.n()) }
func (v *logView) entry(r ref) *entry { return v.st.rings[r.svc()].at(r.n()) }

// indexOfSeq is the index of the first line of refs (all kept) that
// arrived at or after seq.
func (v *logView) indexOfSeq(seq uint64) int {
	return sort.Search(len(v.refs), func(i int) bool { return v.entry(v.refs[i]).seq >= seq })
}

// window is what fits in rows screen rows, each line taking height(r)
// rows (0 for a stale one): the lines [first, last), of which the first
// loses skip rows at the top (following, the newest line is at the
// bottom and the oldest may be cut).
func (v *logView) window(rows int, height func(ref) int) (first, last, skip int) {
	if rows <= 0 || len(v.refs) == 0 {
		return 0, 0, 0
	}
	if v.follow {
		sum, i := 0, len(v.refs)
		for i > 0 && sum < rows {
			i--
			sum += height(v.refs[i])
		}
		return i, len(v.refs), max(sum-rows, 0)
	}
	first = min(v.top, len(v.refs)-1)
	sum, i := 0, first
	for i < len(v.refs) && sum < rows {
		sum += height(v.refs[i])
		i++
	}
	return first, i, 0
}

// pause stops following, if it was, with the window where it is.
func (v *logView) pause(rows int, height func(ref) int) {
	if !v.follow {
		return
	}
	v.top, _, _ = v.window(rows, height)
	v.follow, v.pausedSeq = false, v.st.seq
}

// newLines counts the lines that came since following stopped and are
// below the window: what End would show that the user has not seen.
func (v *logView) newLines(rows int, height func(ref) int) int {
	if v.follow {
		return 0
	}
	_, last, _ := v.window(rows, height)
	return len(v.refs) - max(last, v.indexOfSeq(v.pausedSeq))
}

// scroll moves the window by delta lines (up when negative). Leaving the
// bottom pauses following; reaching it again resumes it.
func (v *logView) scroll(delta, rows int, height func(ref) int) {
	if v.follow {
		if delta >= 0 {
			return
		}
		if _, _, skip := v.window(rows, height); skip > 0 {
			// The first line was cut: showing it whole is a step up.
			delta++
		}
		v.pause(rows, height)
	}
	v.top = max(min(v.top+delta, len(v.refs)-1), 0)
	v.settle(rows, height)
}

// toTop shows the oldest kept line first.
func (v *logView) toTop(rows int, height func(ref) int) {
	v.pause(rows, height)
	v.top = 0
	v.settle(rows, height)
}

// toEnd follows the newest line again.
func (v *logView) toEnd() { v.follow = true }

// settle follows again if the paused window shows everything down to the
// newest line: nothing would tell that a line came.
func (v *logView) settle(rows int, height func(ref) int) {
	if v.follow {
		return
	}
	sum := 0
	for i := v.top; i < len(v.refs); i++ {
		if sum += height(v.refs[i]); sum > rows {
			return
		}
	}
	v.follow = true
}

// setSearch starts a search for term ("" ends it) and counts its matches.
func (v *logView) setSearch(term string) {
	v.search = newMatcher(term)
	v.cur, v.ordinal, v.matches = -1, 0, 0
	if v.search.empty() {
		return
	}
	for _, r := range v.refs {
		if v.ok(r) && v.search.match(v.entry(r).text) {
			v.matches++
		}
	}
}

// find is the index of the nearest match from index from on, going
// forward (to newer lines) or back, and whether it wrapped around an end
// of the list to get there; -1 when nothing matches.
func (v *logView) find(from int, forward bool) (int, bool) {
	n := len(v.refs)
	if v.search.empty() || n == 0 {
		return -1, false
	}
	from = max(min(from, n-1), 0)
	step := 1
	if !forward {
		step = -1
	}
	for k := range n {
		i := from + k*step
		wrapped := i < 0 || i >= n
		i = (i%n + n) % n
		if r := v.refs[i]; v.ok(r) && v.search.match(v.entry(r).text) {
			return i, wrapped
		}
	}
	return -1, false
}

// jump makes match i the current one and brings it on screen, paused,
// for a match that scrolls away is no help: a line already on screen
// stays where it is, any other goes a third of the way down, or as far
// as it can with the newest line at the bottom.
func (v *logView) jump(i, rows int, height func(ref) int) {
	v.cur, v.curSeq = i, v.entry(v.refs[i]).seq
	v.ordinal = v.rank(i)
	first, last, skip := v.window(rows, height)
	v.pause(rows, height)
	if i >= first && i < last && !(i == first && skip > 0) {
		return
	}
	v.follow = true
	bottom, _, _ := v.window(rows, height)
	v.follow = false
	v.top = min(max(i-rows/3, 0), bottom)
}

// rank counts the matches up to and including index i.
func (v *logView) rank(i int) int {
	k := 0
	for _, r := range v.refs[:i+1] {
		if v.ok(r) && v.search.match(v.entry(r).text) {
			k++
		}
	}
	return k
}

// size counts the lines shown.
func (v *logView) size() int { return len(v.refs) - v.stale }
