package runtime

// Reading a container's log (logs.go has its line format): across its
// rotated files (logs_rotate.go), tails read backwards, and following.

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// logTimeSlack is how far behind the time of a line the time of the file it
// is in may be (the kernel stamps files from a clock that ticks).
const logTimeSlack = time.Second

// logReader turns the bytes of a log into entries, joining partial chunks
// per stream, across the files of the log in turn. It reads from where the
// file offset is, keeps an incomplete last line for the next read (the
// monitor may be writing it), and reuses its buffers: a read of a large
// log allocates almost nothing.
type logReader struct {
	f   *os.File // the file being read
	seg *logSegment
	src io.Reader // f, or zr over it
	zr  *gzip.Reader
	// next are the files to read after f, oldest first.
	next  []*logSegment
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

func newLogReader(opts LogOptions, fn func(LogEntry) error) *logReader {
	return &logReader{buf: make([]byte, 256*1024), since: opts.Since, fn: fn}
}

// open makes s the file being read, from offset off of a plain file, and
// closes the one read before. What is left of the previous file is a torn
// last line of a crashed writer: it is dropped. Partial entries go on.
func (lr *logReader) open(s *logSegment, off int64) error {
	if lr.seg != nil && lr.seg != s {
		lr.seg.close()
	}
	lr.seg, lr.f, lr.src = s, s.f, s.f
	lr.start, lr.end = 0, 0
	if !s.gz {
		_, err := s.f.Seek(off, io.SeekStart)
		return err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	var err error
	if lr.zr == nil {
		lr.zr, err = gzip.NewReader(s.f)
	} else {
		err = lr.zr.Reset(s.f)
	}
	if err != nil {
		// Not a gzip file after all: nothing of it can be read.
		lr.src = eofReader{}
		return nil
	}
	lr.src = lr.zr
	return nil
}

// close closes the files the reader holds.
func (lr *logReader) close() {
	lr.seg.close()
	lr.seg, lr.f, lr.src = nil, nil, nil
	closeSegments(lr.next)
	lr.next = nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// readToEOF parses every complete line up to the current end of the file,
// and of the files queued after it.
func (lr *logReader) readToEOF() error {
	for {
		if err := lr.readFile(); err != nil {
			return err
		}
		if len(lr.next) == 0 {
			return nil
		}
		s := lr.next[0]
		lr.next = lr.next[1:]
		if err := lr.open(s, 0); err != nil {
			return err
		}
	}
}

// readFile parses every complete line up to the current end of the file.
func (lr *logReader) readFile() error {
	if lr.src == nil {
		return nil
	}
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
		n, err := lr.src.Read(lr.buf[lr.end:])
		lr.end += n
		if perr := lr.parse(); perr != nil {
			return perr
		}
		if err == io.EOF || (err == nil && n == 0) {
			return nil
		}
		if err != nil && lr.seg != nil && lr.seg.gz {
			// A damaged compressed file (berth renames only whole ones
			// into place): what came before the damage is all it has.
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
// are then dropped. found is how many entries end in the region: fewer
// than n when f holds fewer.
func tailStart(f *os.File, size int64, n int) (off int64, skip, found int, err error) {
	if n < 0 || size == 0 {
		return 0, 0, 0, nil
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
		return 0, 0, 0, err
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
			return 0, 0, 0, err
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
				return 0, 0, 0, err
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
	return start, fAtLast - count, count, nil
}

// readLogFile reads the log file at path from the start offset chosen by
// opts.Tail; it returns the reader positioned at the end, for following.
func readLogFile(path string, opts LogOptions, fn func(LogEntry) error) (*logReader, error) {
	s, err := openSegment(path, false)
	if err != nil {
		return nil, err
	}
	return readSegments([]*logSegment{s}, opts, fn)
}

// readSegments reads the files of a log, oldest first, from where opts.Tail
// says, and returns the reader positioned at the end of the last, for
// following. The reader owns the files, closed by its close.
func readSegments(segs []*logSegment, opts LogOptions, fn func(LogEntry) error) (_ *logReader, err error) {
	lr := newLogReader(opts, fn)
	lr.next = segs
	defer func() {
		if err != nil {
			lr.close()
		}
	}()
	if !opts.Since.IsZero() {
		// A rotated file last written before --since holds no line to
		// show: each line's time is taken before its write, and the
		// file's time is the kernel's coarse clock, a tick behind.
		for len(lr.next) > 1 && lr.next[0].mtime.Add(logTimeSlack).Before(opts.Since) {
			lr.next[0].close()
			lr.next = lr.next[1:]
		}
	}
	first, off := 0, int64(0)
	if opts.Tail >= 0 {
		if first, off, lr.skip, err = lr.tailStart(opts.Tail); err != nil {
			return nil, err
		}
	}
	closeSegments(lr.next[:first])
	s := lr.next[first]
	lr.next = lr.next[first+1:]
	if err := lr.open(s, off); err != nil {
		return nil, err
	}
	if err := lr.readToEOF(); err != nil {
		return nil, err
	}
	return lr, nil
}

// tailStart finds where to start reading the files queued in lr.next to get
// their last n entries: the index of the first file to read, the offset in
// it and how many entries to drop first. The current file is read
// backwards; a rotated one that the tail reaches is counted whole (a
// compressed one cannot be read backwards).
func (lr *logReader) tailStart(n int) (first int, off int64, skip int, err error) {
	need := n
	for i := len(lr.next) - 1; i >= 0; i-- {
		s := lr.next[i]
		var found int
		if s.gz {
			if found, err = lr.countEntries(s); err != nil {
				return 0, 0, 0, err
			}
			if found >= need {
				return i, 0, found - need, nil
			}
		} else {
			o, sk, f, err := tailStart(s.f, s.size, need)
			if err != nil {
				return 0, 0, 0, err
			}
			if f >= need {
				return i, o, sk, nil
			}
			found = f
		}
		need -= found
	}
	return 0, 0, 0, nil
}

// countEntries counts the entries that end in the file s (its F lines).
func (lr *logReader) countEntries(s *logSegment) (int, error) {
	n := 0
	c := &logReader{buf: lr.buf, zr: lr.zr, fn: func(LogEntry) error { n++; return nil }}
	err := c.open(s, 0)
	if err == nil {
		err = c.readFile()
	}
	lr.buf, lr.zr = c.buf, c.zr
	return n, err
}

// follow reads what was written since the last read, across rotations:
// the current file to its end; once the monitor has moved on to a new
// file, the old one to its end (every write to it came before the rename),
// then each file after it. path is the log, maxFiles its limit.
func (lr *logReader) follow(path string, maxFiles int) error {
	for {
		if err := lr.readToEOF(); err != nil {
			return err
		}
		if lr.seg == nil {
			return nil
		}
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed with its container
		}
		if err != nil {
			return err
		}
		curFI, err := lr.f.Stat()
		if err != nil {
			return err
		}
		if os.SameFile(fi, curFI) {
			return nil
		}
		if err := lr.readFile(); err != nil {
			return err
		}
		// The file read so far has its whole text now: its identity is
		// what its compressed copy carries. (A listing made during
		// rotations may end on a file already compressed: it has its
		// identity from its header.)
		if !lr.seg.gz {
			if lr.seg.id, err = fileIdentity(lr.f, curFI); err != nil {
				return err
			}
		}
		segs, err := openLogSegments(path, maxFiles)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		// The files after the one read; all of them when it is gone (the
		// follower fell behind by more than max-file rotations, or there
		// is a single file).
		after := 0
		for i, s := range segs {
			if sameSegment(s, lr.seg) {
				after = i + 1
			}
		}
		closeSegments(segs[:after])
		segs = segs[after:]
		if len(segs) == 0 {
			return nil
		}
		if err := lr.open(segs[0], 0); err != nil {
			closeSegments(segs[1:])
			return err
		}
		lr.next = segs[1:]
	}
}

// ReadLogs calls fn for each line of the output of container name, oldest
// first, across the files of its rotated log. fn must copy LogEntry.Text
// to keep it: its buffer is reused. With opts.Follow it keeps waiting for
// new lines until ctx is done or the container no longer runs and its log
// is fully read; a container that is only created ends the follow at once,
// as `docker logs -f` does. An error of fn stops the read and is returned.
// A container whose driver keeps no log (LogConfig.Readable) has no line:
// the caller tells the user, as docker compose does.
func (r *Runtime) ReadLogs(ctx context.Context, name string, opts LogOptions, fn func(LogEntry) error) error {
	c, err := r.Get(name)
	if err != nil {
		return err
	}
	path, maxFiles := c.LogPath(), 1
	if lim, err := c.Spec.Log.limits(); err == nil {
		maxFiles = lim.maxFiles
	}
	var segs []*logSegment
	if c.Spec.Log.Readable() {
		segs, err = openLogSegments(path, maxFiles)
		if errors.Is(err, os.ErrNotExist) {
			return nil // never started: no output yet
		}
		if err != nil {
			return fmt.Errorf("container %q: logs: %w", name, err)
		}
	}
	if !opts.Follow {
		if opts.Tail == 0 || len(segs) == 0 {
			closeSegments(segs)
			return nil
		}
		lr, err := readSegments(segs, opts, fn)
		if err != nil {
			return fmt.Errorf("container %q: logs: %w", name, err)
		}
		defer lr.close()
		return lr.flush()
	}
	w := newDirWatch(c.Dir)
	defer w.close()
	defer context.AfterFunc(ctx, w.interrupt)()
	var lr *logReader
	if len(segs) == 0 {
		lr = newLogReader(opts, fn) // none: nothing to read but the end
	} else if lr, err = readSegments(segs, opts, fn); err != nil {
		return fmt.Errorf("container %q: logs: %w", name, err)
	}
	defer lr.close()
	for {
		// Look at the state first: the monitor writes the last output
		// before it records the exit, so a read after seeing the container
		// stopped gets every line.
		c, err := r.Get(name)
		running := err == nil && c.State.Status.Alive()
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := lr.follow(path, maxFiles); err != nil {
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
