package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// The log file holds one line per chunk of output, in the CRI format that
// containerd and the kubelet use:
//
//	2024-05-01T12:00:00.123456789Z stdout F hello
//
// the time (UTC, always nine digits of fraction, so lines sort as text), the
// stream, a tag and the text without its newline. A line of output longer
// than maxLogLine is cut into chunks tagged P (partial) and ended by one
// tagged F (full), so that neither the monitor nor a reader ever holds more
// than one chunk of a runaway line. Every logging driver but none keeps
// this format; they differ in when the file is rotated (logs_rotate.go).

// The two streams of a container's output, as LogEntry.Stream names them.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// maxLogLine is the longest chunk of output one log line holds.
const maxLogLine = 16 * 1024

// logTimeLayout is the fixed-width form of the time of a log line.
const logTimeLayout = "2006-01-02T15:04:05.000000000Z"

// LogEntry is one line of a container's output.
type LogEntry struct {
	Time   time.Time
	Stream string // Stdout or Stderr
	// Text is the whole line, partial chunks joined, without its newline.
	// It is only valid during the callback: copy it to keep it.
	Text []byte
}

// LogOptions select what ReadLogs reads.
type LogOptions struct {
	// Tail keeps only the last Tail lines; < 0 reads them all, 0 none (with
	// Follow: only what comes next), as `docker logs --tail`.
	Tail int
	// Follow keeps reading new lines until the container stops.
	Follow bool
	// Since skips lines written before it (zero: none skipped).
	Since time.Time
}

// appendLogLine appends one CRI log line (with its newline) to buf.
func appendLogLine(buf []byte, t time.Time, stream string, partial bool, text []byte) []byte {
	buf = appendLogTime(buf, t)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	if partial {
		buf = append(buf, " P "...)
	} else {
		buf = append(buf, " F "...)
	}
	buf = append(buf, text...)
	return append(buf, '\n')
}

// appendLogTime appends t in logTimeLayout, by hand: the monitor formats one
// time per line of output and time.AppendFormat is several times slower.
func appendLogTime(buf []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	if year < 0 || year > 9999 {
		return t.AppendFormat(buf, logTimeLayout)
	}
	buf = appendDigits(buf, year, 4)
	buf = append(buf, '-')
	buf = appendDigits(buf, int(month), 2)
	buf = append(buf, '-')
	buf = appendDigits(buf, day, 2)
	buf = append(buf, 'T')
	buf = appendDigits(buf, hour, 2)
	buf = append(buf, ':')
	buf = appendDigits(buf, min, 2)
	buf = append(buf, ':')
	buf = appendDigits(buf, sec, 2)
	buf = append(buf, '.')
	buf = appendDigits(buf, t.Nanosecond(), 9)
	return append(buf, 'Z')
}

func appendDigits(buf []byte, v, width int) []byte {
	var tmp [9]byte
	for i := width - 1; i >= 0; i-- {
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(buf, tmp[:width]...)
}

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

// logWriter appends the container's output to its log file. The copiers of
// both streams share it; each line goes out in one write(2) on an O_APPEND
// file, so a reader sees whole lines, or the start of the last one. Past
// its limits it rotates the file between two lines (logs_rotate.go). A
// writer made as &logWriter{f: f} never rotates.
type logWriter struct {
	mu      sync.Mutex
	f       *os.File
	discard bool // the none driver: drain the output, keep nothing
	buf     []byte
	err     error // the first write error, reported once

	path      string // the current file's name, for rotations
	lim       logLimits
	size      int64   // of the current file
	retryAt   int64   // after a failed rotation, the size to try again at
	inPartial [2]bool // a stream's last line was a P chunk
	kept      int     // rotated files there are (container.log.1 to .kept)
	rotErr    bool    // a rotation error was reported

	// rotations counts this writer's rotations; pending holds the
	// rotation numbers of the files waiting for the compressor, which
	// runs while compressing is set.
	rotations   int64
	pending     []int64
	compressing bool
	compressors sync.WaitGroup
}

func (w *logWriter) write(stream string, partial bool, text []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.discard {
		return
	}
	w.buf = appendLogLine(w.buf[:0], time.Now(), stream, partial, text)
	if w.rotateDue(len(w.buf)) {
		if err := w.rotate(); err != nil {
			// Keep writing to the file there is; try again when it has
			// grown by another max-size.
			w.retryAt = w.size + w.lim.maxSize
			if !w.rotErr {
				w.rotErr = true
				fmt.Fprintf(os.Stderr, "berth monitor: rotate log: %v\n", err)
			}
		}
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if err != nil && w.err == nil {
		// Keep draining the pipe all the same: a full disk must not block
		// the container on its next write to stdout.
		w.err = err
		fmt.Fprintf(os.Stderr, "berth monitor: write log: %v\n", err)
	}
	w.inPartial[streamIndex(stream)] = partial
	if cap(w.buf) > 2*maxLogLine {
		w.buf = nil
	}
}

// close closes the log file once the compressor is done.
func (w *logWriter) close() error {
	w.compressors.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// lineSplitter cuts one stream's output into log lines: whole lines as F,
// a line that fills its buffer (maxLogLine) as a P chunk, so the monitor
// never holds more than one chunk of a runaway line.
type lineSplitter struct {
	stream string
	buf    []byte // buf[:n] is the line in progress
	n      int
}

func newLineSplitter(stream string) *lineSplitter {
	return &lineSplitter{stream: stream, buf: make([]byte, maxLogLine)}
}

// space is where the next read goes; pass its count to wrote.
func (ls *lineSplitter) space() []byte { return ls.buf[ls.n:] }

// wrote takes n more bytes of output (read into space) and logs the lines
// they complete.
func (ls *lineSplitter) wrote(w *logWriter, n int) {
	ls.n += n
	start := 0
	for {
		i := bytes.IndexByte(ls.buf[start:ls.n], '\n')
		if i < 0 {
			break
		}
		w.write(ls.stream, false, ls.buf[start:start+i])
		start += i + 1
	}
	if start == 0 && ls.n == len(ls.buf) {
		w.write(ls.stream, true, ls.buf[:ls.n])
		ls.n = 0
		return
	}
	ls.n = copy(ls.buf, ls.buf[start:ls.n])
}

// end logs a last line that has no newline as a full one.
func (ls *lineSplitter) end(w *logWriter) {
	if ls.n > 0 {
		w.write(ls.stream, false, ls.buf[:ls.n])
		ls.n = 0
	}
}

// copyStream copies what r yields into w until EOF, as a lineSplitter cuts
// it.
func copyStream(w *logWriter, stream string, r io.Reader) error {
	ls := newLineSplitter(stream)
	for {
		n, err := r.Read(ls.space())
		ls.wrote(w, n)
		if err != nil {
			ls.end(w)
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}
