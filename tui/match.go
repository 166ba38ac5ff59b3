package tui

import (
	"strings"
	"unicode"
)

// matcher finds a search or filter term in lines, with smart case as in
// vim and less: a term in lower case matches any case, a term with a
// capital letter only itself. It runs on every incoming line while a
// filter is set, so it does not allocate.
type matcher struct {
	term string
	fold bool
}

func newMatcher(term string) matcher {
	return matcher{term: term, fold: strings.ToLower(term) == term}
}

func (m matcher) empty() bool { return m.term == "" }

func (m matcher) match(s string) bool { return m.index(s, 0) >= 0 }

// index is the byte offset of the first match in s at or after from, or
// -1. An empty matcher matches nothing.
func (m matcher) index(s string, from int) int {
	t := m.term
	if t == "" || from > len(s) {
		return -1
	}
	if !m.fold {
		if i := strings.Index(s[from:], t); i >= 0 {
			return from + i
		}
		return -1
	}
	first := t[0]
	if first < 0x80 {
		// The common case: compare the first byte in either case before
		// trying the whole term.
		lo, up := first, byte(unicode.ToUpper(rune(first)))
		for i := from; i+len(t) <= len(s); i++ {
			if c := s[i]; (c == lo || c == up) && strings.EqualFold(s[i:i+len(t)], t) {
				return i
			}
		}
		return -1
	}
	// A term that starts with a non-ASCII letter: compare at each rune
	// start. (A fold that changes a letter's length in bytes, as the
	// Kelvin sign does, is not found: a search box can live with that.)
	for i := from; i+len(t) <= len(s); i++ {
		if s[i]&0xc0 != 0x80 && strings.EqualFold(s[i:i+len(t)], t) {
			return i
		}
	}
	return -1
}

// spans are the byte ranges of the matches in s, in order, each [a, b).
func (m matcher) spans(s string) [][2]int {
	var out [][2]int
	for i := 0; ; {
		j := m.index(s, i)
		if j < 0 {
			return out
		}
		out = append(out, [2]int{j, j + len(m.term)})
		i = j + len(m.term)
	}
}
