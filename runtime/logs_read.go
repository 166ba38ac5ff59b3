package runtime

// Reading a container's log: parsing CRI lines, tails, and following.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// errBadLogLine: a line of the log file is not in the CRI format.
var errBadLogLine = errors.New("malformed log line")

// parseLogLine splits one log line (without its newline). text aliases line.
func parseLogLine(line []byte) (t time.Time, stream string, partial bool, text []byte, err error) {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return t, "", false, nil, errBadLogLine
	}
	t, ok := parseLogTime(line[:sp])
	if !ok {
		var perr error
		if t, perr = time.Parse(time.RFC3339Nano, string(line[:sp])); perr != nil {
			return t, "", false, nil, errBadLogLine
		}
	}
	rest := line[sp+1:]
	switch {
	case bytes.HasPrefix(rest, []byte(Stdout+" ")):
		stream = Stdout
	case bytes.HasPrefix(rest, []byte(Stderr+" ")):
		stream = Stderr
	default:
		return t, "", false, nil, errBadLogLine
	}
	rest = rest[len(stream)+1:]
	if len(rest) < 2 || rest[1] != ' ' || (rest[0] != 'P' && rest[0] != 'F') {
		return t, "", false, nil, errBadLogLine
	}
	return t, stream, rest[0] == 'P', rest[2:], nil
}

// parseLogTime parses logTimeLayout without allocating; ok is false for
// any other form, which the caller then hands to time.Parse.
func parseLogTime(b []byte) (time.Time, bool) {
	if len(b) != len(logTimeLayout) || b[4] != '-' || b[7] != '-' || b[10] != 'T' ||
		b[13] != ':' || b[16] != ':' || b[19] != '.' || b[29] != 'Z' {
		return time.Time{}, false
	}
	num := func(b []byte) (int, bool) {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	min, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	nsec, ok7 := num(b[20:29])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, min, sec, nsec, time.UTC), true
}

// streamIndex maps a stream name to 0 (stdout) or 1 (stderr).
func streamIndex(stream string) int {
	if stream == Stderr {
		return 1
	}
	return 0
}

// logReader turns the bytes of a log file into entries, joining partial
// chunks per stream. It reads from where the file offset is, keeps an
// incomplete last line for the next read (the monitor may be writing it),
// and reuses its buffers: a read of a large log allocates almost nothing.
type logReader struct {
	f     *os.File
	buf   []byte
	start int // buf[start:end] is read and not yet parsed
	end   int
	// pending holds the joined partial chunks of the entry in progress of
	// each stream, pendingTime the time of its first chunk.
	pending     [2][]byte
	pendingTime [2]time.Time
	inPartial   [2]bool
	// skip is how many complete entries to drop first (the tail's excess).
	skip  int
	since time.Time
	fn    func(LogEntry) error
}

func newLogReader(f *os.File, opts LogOptions, skip int, fn func(LogEntry) error) *logReader {
	return &logReader{f: f, buf: make([]byte, 256*1024), skip: skip, since: opts.Since, fn: fn}
}

// readToEOF parses every complete line up to the current end of the file.
func (lr *logReader) readToEOF() error {
	for {
		if lr.start > 0 && lr.start == lr.end {
			lr.start, lr.end = 0, 0
		}
		if lr.end == len(lr.buf) {
			if lr.start > 0 {
				lr.end = copy(lr.buf, lr.buf[lr.start:lr.end])
				lr.start = 0
			} else {
				// One line larger than the buffer: a file not written by
				// a monitor. Grow rather than fail.
				lr.buf = append(lr.buf, make([]byte, len(lr.buf))...)
			}
		}
		n, err := lr.f.Read(lr.buf[lr.end:])
		lr.end += n
		if perr := lr.parse(); perr != nil {
			return perr
		}
		if err == io.EOF || (err == nil && n == 0) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// parse hands every complete line of buf[start:end] to entry.
func (lr *logReader) parse() error {
	for lr.start < lr.end {
		i := bytes.IndexByte(lr.buf[lr.start:lr.end], '\n')
		if i < 0 {
			return nil
		}
		line := lr.buf[lr.start : lr.start+i]
		lr.start += i + 1
		if err := lr.line(line); err != nil {
			return err
		}
	}
	return nil
}

func (lr *logReader) line(line []byte) error {
	t, stream, partial, text, err := parseLogLine(line)
	if err != nil {
		return nil // a torn line of a crashed writer: skip it, as the kubelet does
	}
	s := streamIndex(stream)
	if partial || lr.inPartial[s] {
		if !lr.inPartial[s] {
			lr.inPartial[s] = true
			lr.pendingTime[s] = t
			lr.pending[s] = lr.pending[s][:0]
		}
		lr.pending[s] = append(lr.pending[s], text...)
		if partial {
			return nil
		}
		lr.inPartial[s] = false
		t, text = lr.pendingTime[s], lr.pending[s]
	}
	if lr.skip > 0 {
		lr.skip--
		return nil
	}
	if !lr.since.IsZero() && t.Before(lr.since) {
		return nil
	}
	return lr.fn(LogEntry{Time: t, Stream: stream, Text: text})
}

// flush emits the entries left unfinished at the end of the file (a
// monitor killed in the middle of a long line).
func (lr *logReader) flush() error {
	for s, name := range [2]string{Stdout, Stderr} {
		if lr.inPartial[s] {
			lr.inPartial[s] = false
			if err := lr.fn(LogEntry{Time: lr.pendingTime[s], Stream: name, Text: lr.pending[s]}); err != nil {
				return err
			}
		}
	}
	return nil
}

// tailStart finds where to start reading f (of the given size) to get its
// last n entries, reading backwards from the end. It returns the offset and
// how many complete entries the forward read must drop first: the region may
// have to start earlier than the n-th last entry to catch the first chunks
// of a long line, and the entries of the other stream that end in between
// are then dropped.
func tailStart(f *os.File, size int64, n int) (off int64, skip int, err error) {
	if n < 0 || size == 0 {
		return 0, 0, nil
	}
	const chunk = 64 * 1024
	var (
		data    []byte // file bytes [pos, pos+len(data))
		pos     = size
		hi      int // data[:hi] holds the lines not yet looked at
		start   = size
		count   int
		fSeen   int
		fAtLast int
		open    [2]bool
		seen    [2]bool
	)
	// readMore prepends the chunk before pos to data.
	readMore := func() error {
		m := int64(chunk)
		if m > pos {
			m = pos
		}
		nd := make([]byte, int(m)+len(data))
		if _, err := f.ReadAt(nd[:m], pos-m); err != nil {
			return err
		}
		copy(nd[m:], data)
		data, pos, hi = nd, pos-m, hi+int(m)
		return nil
	}
	if err := readMore(); err != nil {
		return 0, 0, err
	}
	// An incomplete last line (being written) is not a line yet; the
	// forward read starts no later than its first byte.
	for {
		if i := bytes.LastIndexByte(data[:hi], '\n'); i >= 0 || pos == 0 {
			start = pos + int64(i+1)
			hi = i + 1
			break
		}
		if err := readMore(); err != nil {
			return 0, 0, err
		}
	}
	for hi > 0 {
		if count == n && !open[0] && !open[1] {
			break
		}
		// The line is data[ls:hi-1], its newline at hi-1.
		ls := bytes.LastIndexByte(data[:hi-1], '\n') + 1
		if ls == 0 && pos > 0 {
			if err := readMore(); err != nil {
				return 0, 0, err
			}
			continue
		}
		line := data[ls : hi-1]
		lineOff := pos + int64(ls)
		hi = ls
		_, stream, partial, _, perr := parseLogLine(line)
		if perr != nil {
			continue
		}
		s := streamIndex(stream)
		include := false
		switch {
		case !partial:
			fSeen++
			if count < n {
				count++
				include = true
			} else {
				open[s] = false
			}
		case open[s] || !seen[s]:
			include = true
		}
		seen[s] = true
		if include {
			open[s] = true
			start = lineOff
			fAtLast = fSeen
		}
	}
	if hi == 0 && pos == 0 {
		// Reached the beginning with an entry still open: it starts there.
		if open[0] || open[1] {
			start, fAtLast = 0, fSeen
		}
	}
	return start, fAtLast - count, nil
}

// readLogFile reads the log file at path from the start offset chosen by
// opts.Tail; it returns the reader positioned at the end, for following.
func readLogFile(path string, opts LogOptions, fn func(LogEntry) error) (*logReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	lr, err := startLogReader(f, opts, fn)
	if err != nil {
		f.Close()
		return nil, err
	}
	return lr, nil
}

func startLogReader(f *os.File, opts LogOptions, fn func(LogEntry) error) (*logReader, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off, skip := int64(0), 0
	if opts.Tail >= 0 {
		if off, skip, err = tailStart(f, fi.Size(), opts.Tail); err != nil {
			return nil, err
		}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	lr := newLogReader(f, opts, skip, fn)
	if err := lr.readToEOF(); err != nil {
		return nil, err
	}
	return lr, nil
}

// ReadLogs calls fn for each line of the output of container name, oldest
// first. fn must copy LogEntry.Text to keep it: its buffer is reused. With
// opts.Follow it keeps waiting for new lines until ctx is done or the
// container no longer runs and its log is fully read; a container that is
// only created ends the follow at once, as `docker logs -f` does. An error
// of fn stops the read and is returned.
func (r *Runtime) ReadLogs(ctx context.Context, name string, opts LogOptions, fn func(LogEntry) error) error {
	c, err := r.Get(name)
	if err != nil {
		return err
	}
	f, err := os.Open(c.LogPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil // never started: no output yet
	}
	if err != nil {
		return fmt.Errorf("container %q: logs: %w", name, err)
	}
	defer f.Close()
	if !opts.Follow {
		if opts.Tail == 0 {
			return nil
		}
		lr, err := startLogReader(f, opts, fn)
		if err != nil {
			return fmt.Errorf("container %q: logs: %w", name, err)
		}
		return lr.flush()
	}
	w := newDirWatch(c.Dir)
	defer w.close()
	defer context.AfterFunc(ctx, w.interrupt)()
	lr, err := startLogReader(f, opts, fn)
	if err != nil {
		return fmt.Errorf("container %q: logs: %w", name, err)
	}
	for {
		// Look at the state first: the monitor writes the last output
		// before it records the exit, so a read after seeing the container
		// stopped gets every line.
		c, err := r.Get(name)
		running := err == nil && c.State.Status.Alive()
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := lr.readToEOF(); err != nil {
			return fmt.Errorf("container %q: logs: %w", name, err)
		}
		if !running {
			return lr.flush()
		}
		if err := w.wait(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// dirWatch wakes a follower when a file in a container's directory changes
// (a log line appended, the state replaced). Without inotify it degrades to
// polling at the wait's timeout.
type dirWatch struct {
	f   *os.File
	buf []byte
}

func newDirWatch(dir string) *dirWatch {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return &dirWatch{}
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MODIFY|unix.IN_MOVED_TO|unix.IN_CREATE|unix.IN_DELETE_SELF); err != nil {
		unix.Close(fd)
		return &dirWatch{}
	}
	return &dirWatch{f: os.NewFile(uintptr(fd), filepath.Join(dir, "inotify")), buf: make([]byte, 4096)}
}

// wait returns after a change, after timeout, or with ctx's error.
func (w *dirWatch) wait(ctx context.Context, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.f == nil {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	w.f.SetReadDeadline(deadline)
	// A read error (the deadline, mostly) only means: look again.
	w.f.Read(w.buf)
	return ctx.Err()
}

// interrupt ends a wait at once (ctx is done).
func (w *dirWatch) interrupt() {
	if w.f != nil {
		w.f.SetReadDeadline(time.Now())
	}
}

func (w *dirWatch) close() {
	if w.f != nil {
		w.f.Close()
	}
}
