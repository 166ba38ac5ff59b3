package runtime

import (
	"bytes"
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
// than one chunk of a runaway line.

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

// logWriter appends the container's output to its log file. The copiers of
// both streams share it; each line goes out in one write(2) on an O_APPEND
// file, so a reader sees whole lines, or the start of the last one.
type logWriter struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
	err error // the first write error, reported once
}

func (w *logWriter) write(stream string, partial bool, text []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = appendLogLine(w.buf[:0], time.Now(), stream, partial, text)
	if _, err := w.f.Write(w.buf); err != nil && w.err == nil {
		// Keep draining the pipe all the same: a full disk must not block
		// the container on its next write to stdout.
		w.err = err
		fmt.Fprintf(os.Stderr, "berth monitor: write log: %v\n", err)
	}
	if cap(w.buf) > 2*maxLogLine {
		w.buf = nil
	}
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
