package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLogLineFormat(t *testing.T) {
	for _, tc := range []struct {
		time    time.Time
		stream  string
		partial bool
		text    string
		want    string
	}{
		{time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC), Stdout, false, "hello world",
			"2024-05-01T12:00:00.123456789Z stdout F hello world\n"},
		// Always nine digits, so that lines sort as text.
		{time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), Stderr, true, "",
			"2024-05-01T12:00:00.000000000Z stderr P \n"},
		// Any zone is written as UTC.
		{time.Date(2024, 5, 1, 14, 0, 0, 1000, time.FixedZone("CEST", 2*3600)), Stdout, false, "  spaced  F ",
			"2024-05-01T12:00:00.000001000Z stdout F   spaced  F \n"},
	} {
		got := string(appendLogLine(nil, tc.time, tc.stream, tc.partial, []byte(tc.text)))
		if got != tc.want {
			t.Errorf("appendLogLine = %q, want %q", got, tc.want)
			continue
		}
		if want := tc.time.UTC().Format(logTimeLayout); !strings.HasPrefix(got, want+" ") {
			t.Errorf("time %q differs from time.Format's %q", got, want)
		}
		pt, stream, partial, text, err := parseLogLine([]byte(strings.TrimSuffix(got, "\n")))
		if err != nil {
			t.Fatalf("parseLogLine(%q): %v", got, err)
		}
		if !pt.Equal(tc.time) || stream != tc.stream || partial != tc.partial || string(text) != tc.text {
			t.Errorf("parseLogLine(%q) = %v %s %v %q", got, pt, stream, partial, text)
		}
	}
}

func TestParseLogLineRejects(t *testing.T) {
	for _, line := range []string{
		"",
		"garbage",
		"2024-05-01T12:00:00.000000000Z",
		"2024-05-01T12:00:00.000000000Z stdin F x",
		"2024-05-01T12:00:00.000000000Z stdout X x",
		"2024-05-01T12:00:00.000000000Z stdout F",
		"2024-13-01T12:00:00.00000000xZ stdout F x",
	} {
		if _, _, _, _, err := parseLogLine([]byte(line)); err == nil {
			t.Errorf("parseLogLine(%q) accepted it", line)
		}
	}
	// Other RFC 3339 forms (another writer, another precision) are read.
	tm, _, _, text, err := parseLogLine([]byte("2024-05-01T14:00:00.5+02:00 stdout F x"))
	if err != nil || !tm.Equal(time.Date(2024, 5, 1, 12, 0, 0, 5e8, time.UTC)) || string(text) != "x" {
		t.Errorf("RFC 3339 time: %v %q %v", tm, text, err)
	}
}

// logFileOf writes what copyStream makes of each stream's output (in turn)
// into a log file and returns its path.
func logFileOf(t *testing.T, outputs ...[2]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), logFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := &logWriter{f: f}
	for _, o := range outputs {
		if err := copyStream(w, o[0], strings.NewReader(o[1])); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func readAll(t *testing.T, path string, opts LogOptions) []string {
	t.Helper()
	var got []string
	lr, err := readLogFile(path, opts, func(e LogEntry) error {
		got = append(got, e.Stream+" "+string(e.Text))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer lr.f.Close()
	if err := lr.flush(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCopyStreamSplitsLongLines(t *testing.T) {
	long := strings.Repeat("x", 2*maxLogLine+100)
	exact := strings.Repeat("y", maxLogLine)
	path := logFileOf(t, [2]string{Stdout, "one\n\n" + long + "\n" + exact + "\nlast without newline"})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for line := range strings.Lines(string(data)) {
		_, _, partial, text, err := parseLogLine([]byte(strings.TrimSuffix(line, "\n")))
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if len(text) > maxLogLine {
			t.Errorf("a chunk of %d bytes", len(text))
		}
		tag := "F"
		if partial {
			tag = "P"
		}
		tags = append(tags, tag)
	}
	// one, empty, long (P P F), exact (P F: its newline comes in the next
	// read), last.
	if want := "F F P P F P F F"; strings.Join(tags, " ") != want {
		t.Errorf("tags %v, want %s", tags, want)
	}
	got := readAll(t, path, LogOptions{Tail: -1})
	want := []string{"stdout one", "stdout ", "stdout " + long, "stdout " + exact, "stdout last without newline"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("entries differ: got %d, want %d", len(got), len(want))
	}
}

// interleaved writes a log whose entries alternate streams irregularly,
// some long enough to be split, with the chunks of one stream's long line
// interleaved with the other stream's lines, as two copiers write them.
func interleaved(t *testing.T, n int) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), logFile)
	var buf []byte
	var want []string
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		s := Stdout
		if i%3 == 1 {
			s = Stderr
		}
		text := fmt.Sprintf("line %d", i)
		if i%5 == 0 {
			// Split in three chunks, another stream's line in between.
			other := Stderr
			if s == Stderr {
				other = Stdout
			}
			buf = appendLogLine(buf, now, s, true, []byte(text+" a "))
			buf = appendLogLine(buf, now, other, false, []byte(text+" other"))
			buf = appendLogLine(buf, now, s, true, []byte("b "))
			buf = appendLogLine(buf, now, s, false, []byte("c"))
			want = append(want, other+" "+text+" other", s+" "+text+" a b c")
			continue
		}
		buf = appendLogLine(buf, now, s, false, []byte(text))
		want = append(want, s+" "+text)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, want
}

func TestTail(t *testing.T) {
	path, all := interleaved(t, 40)
	for n := 0; n <= len(all)+2; n++ {
		got := readAll(t, path, LogOptions{Tail: n})
		want := all
		if n < len(all) {
			want = all[len(all)-n:]
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("tail %d:\n got %q\nwant %q", n, got, want)
		}
	}
	if got := readAll(t, path, LogOptions{Tail: -1}); strings.Join(got, "|") != strings.Join(all, "|") {
		t.Errorf("all: got %q", got)
	}
}

func TestTailLargeFile(t *testing.T) {
	// Lines across several of tailStart's 64 KiB chunks, an incomplete line
	// at the end (being written) that is not an entry yet.
	var buf []byte
	now := time.Now()
	for i := 0; i < 20000; i++ {
		buf = appendLogLine(buf, now, Stdout, false, fmt.Appendf(nil, "entry %d", i))
	}
	buf = append(buf, "2024-01-01T00:00:00.000000000Z stdout F half"...)
	path := filepath.Join(t.TempDir(), logFile)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, path, LogOptions{Tail: 3000})
	if len(got) != 3000 || got[0] != "stdout entry 17000" || got[2999] != "stdout entry 19999" {
		t.Errorf("tail 3000: %d entries, %q … %q", len(got), got[0], got[len(got)-1])
	}
}

func TestSinceAndTornLines(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf []byte
	buf = appendLogLine(buf, t0, Stdout, false, []byte("old"))
	buf = append(buf, "torn line of a crashed writer\n"...)
	buf = appendLogLine(buf, t0.Add(time.Second), Stderr, false, []byte("new"))
	path := filepath.Join(t.TempDir(), logFile)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, path, LogOptions{Tail: -1, Since: t0.Add(time.Millisecond)}); strings.Join(got, "|") != "stderr new" {
		t.Errorf("since: %q", got)
	}
	if got := readAll(t, path, LogOptions{Tail: -1}); strings.Join(got, "|") != "stdout old|stderr new" {
		t.Errorf("torn line: %q", got)
	}
}

// fakeContainer makes a container directory by hand, as a monitor in this
// very process would leave it: running when running is true.
func fakeContainer(t *testing.T, r *Runtime, name string, running bool) *Container {
	t.Helper()
	c, err := r.Create(context.Background(), Spec{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if running {
		start, err := procStartTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if err := writeState(c.Dir, State{Status: Running, MonitorPid: os.Getpid(), MonitorStart: start}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestReadLogsFollow(t *testing.T) {
	r, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := fakeContainer(t, r, "follow", true)
	f, err := os.OpenFile(c.LogPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := &logWriter{f: f}
	w.write(Stdout, false, []byte("before"))

	lines := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- r.ReadLogs(context.Background(), "follow", LogOptions{Tail: -1, Follow: true}, func(e LogEntry) error {
			lines <- string(e.Text)
			return nil
		})
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case err := <-done:
			// The follower sends its last lines before it returns:
			// both may be ready at once.
			done <- err
			if len(lines) == 0 {
				t.Fatalf("follow ended early (%v), waiting for %q", err, want)
			}
			if got := <-lines; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %q within 10s", want)
		}
	}
	expect("before")
	// A line written in two pieces arrives whole.
	line := appendLogLine(nil, time.Now(), Stdout, false, []byte("after"))
	f.Write(line[:20])
	f.Write(line[20:])
	expect("after")

	// The exit is recorded after the last lines: follow reads them and
	// ends.
	w.write(Stderr, false, []byte("last"))
	if err := writeState(c.Dir, State{Status: Exited}); err != nil {
		t.Fatal(err)
	}
	expect("last")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("follow: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end after the container exited")
	}
}

func TestReadLogsFollowCancel(t *testing.T) {
	r, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fakeContainer(t, r, "cancel", true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.ReadLogs(ctx, "cancel", LogOptions{Tail: -1, Follow: true}, func(LogEntry) error { return nil })
	}()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("follow ended with %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end on cancel")
	}
}

func TestReadLogsNotFound(t *testing.T) {
	r, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	err = r.ReadLogs(context.Background(), "nope", LogOptions{Tail: -1}, func(LogEntry) error { return nil })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadLogs of no container: %v", err)
	}
}

// bigLog writes n short lines of both streams.
func bigLog(tb testing.TB, n int) string {
	var buf bytes.Buffer
	now := time.Now()
	var line []byte
	for i := 0; i < n; i++ {
		s := Stdout
		if i%4 == 0 {
			s = Stderr
		}
		line = appendLogLine(line[:0], now, s, false, fmt.Appendf(nil, "request %d served in 1.2ms: GET /api/items?page=%d 200", i, i))
		buf.Write(line)
	}
	path := filepath.Join(tb.TempDir(), logFile)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkReadLogs200k reads 200k lines, what `berth logs` of a busy
// service reads: the target is well under 150 ms with the printing.
func BenchmarkReadLogs200k(b *testing.B) {
	path := bigLog(b, 200000)
	b.ResetTimer()
	for b.Loop() {
		n := 0
		lr, err := readLogFile(path, LogOptions{Tail: -1}, func(e LogEntry) error {
			n += len(e.Text)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		lr.f.Close()
	}
}

func TestReadLogsAllocations(t *testing.T) {
	path := bigLog(t, 20000)
	allocs := testing.AllocsPerRun(3, func() {
		lr, err := readLogFile(path, LogOptions{Tail: -1}, func(LogEntry) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		lr.f.Close()
	})
	// A handful for the file and the buffers, none per line.
	if allocs > 50 {
		t.Errorf("%v allocations to read 20000 lines", allocs)
	}
	start := time.Now()
	lr, err := readLogFile(path, LogOptions{Tail: -1}, func(LogEntry) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	lr.f.Close()
	t.Logf("read 20000 lines in %v", time.Since(start))
}
