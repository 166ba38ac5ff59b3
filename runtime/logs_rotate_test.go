package runtime

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogLimits(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		cfg  LogConfig
		want logLimits
	}{
		// docker's local driver, berth's default: 20 MiB in 5 files.
		{LogConfig{}, logLimits{maxSize: 20 << 20, maxFiles: 5, compress: true}},
		{LogConfig{Driver: "local", MaxSize: 1000, Compress: &no}, logLimits{maxSize: 1000, maxFiles: 5}},
		{LogConfig{Driver: "local", MaxFile: 1}, logLimits{maxSize: 20 << 20, maxFiles: 1}},
		{LogConfig{MaxSize: -1}, logLimits{maxFiles: 5}},
		// json-file: no limit unless max-size, one file, not compressed.
		{LogConfig{Driver: "json-file"}, logLimits{maxFiles: 1}},
		{LogConfig{Driver: "json-file", MaxSize: 1 << 20}, logLimits{maxSize: 1 << 20, maxFiles: 1}},
		{LogConfig{Driver: "json-file", MaxSize: 1 << 20, MaxFile: 3, Compress: &yes}, logLimits{maxSize: 1 << 20, maxFiles: 3, compress: true}},
		{LogConfig{Driver: "none"}, logLimits{discard: true, maxFiles: 1}},
	} {
		got, err := tc.cfg.limits()
		if err != nil || got != tc.want {
			t.Errorf("%+v: limits %+v, %v; want %+v", tc.cfg, got, err, tc.want)
		}
	}
	if _, err := (LogConfig{Driver: "syslog"}).limits(); err == nil {
		t.Error("driver syslog accepted")
	}
	if (LogConfig{Driver: "none"}).Readable() || !(LogConfig{}).Readable() {
		t.Error("Readable: only none keeps nothing")
	}
}

// rotatingLog opens a log with cfg in a new directory.
func rotatingLog(t testing.TB, cfg LogConfig) (*logWriter, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := openLog(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.close() })
	return w, dir
}

// logNames lists the log's files in dir.
func logNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// readDir reads the log in dir as ReadLogs does, without following.
func readDir(t testing.TB, dir string, maxFiles int, opts LogOptions) []string {
	t.Helper()
	segs, err := openLogSegments(filepath.Join(dir, logFile), maxFiles)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	lr, err := readSegments(segs, opts, func(e LogEntry) error {
		got = append(got, e.Stream+" "+string(e.Text))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer lr.close()
	if err := lr.flush(); err != nil {
		t.Fatal(err)
	}
	return got
}

// lineText is the text of line i of the tests' output, about 50 bytes a
// line in the log.
func lineText(i int) string { return fmt.Sprintf("line %05d", i) }

// consecutive checks that got is "stdout line a" … "stdout line b-1".
func consecutive(t *testing.T, got []string, a, b int) {
	t.Helper()
	if len(got) != b-a {
		t.Fatalf("%d lines, want %d (%d to %d): %q … %q", len(got), b-a, a, b-1, first(got), last(got))
	}
	for i, g := range got {
		if want := "stdout " + lineText(a+i); g != want {
			t.Fatalf("line %d: %q, want %q", i, g, want)
		}
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// firstLine is the number of the first line the log in dir holds.
func firstLine(t *testing.T, dir string, maxFiles int) int {
	t.Helper()
	all := readDir(t, dir, maxFiles, LogOptions{Tail: -1})
	if len(all) == 0 {
		t.Fatal("empty log")
	}
	var n int
	if _, err := fmt.Sscanf(all[0], "stdout line %d", &n); err != nil {
		t.Fatalf("first line %q: %v", all[0], err)
	}
	return n
}

func TestLogRotationSizesAndCount(t *testing.T) {
	no := false
	w, dir := rotatingLog(t, LogConfig{MaxSize: 1000, MaxFile: 3, Compress: &no})
	for i := range 500 {
		w.write(Stdout, false, []byte(lineText(i)))
	}
	names := logNames(t, dir)
	if want := []string{"container.log", "container.log.1", "container.log.2"}; !slices.Equal(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1000 || fi.Size() == 0 {
			t.Errorf("%s: %d bytes, want 1..1000", n, fi.Size())
		}
	}
	// The rotated files are full: the lines kept are the last two files'
	// worth and the current one's.
	from := firstLine(t, dir, 3)
	consecutive(t, readDir(t, dir, 3, LogOptions{Tail: -1}), from, 500)
	if kept := 500 - from; kept < 2*(1000/51) || kept > 3*(1000/50) {
		t.Errorf("%d lines kept in 3 files of 1000 bytes", kept)
	}
}

func TestLogRotationSingleFile(t *testing.T) {
	// max-file 1: the file starts again, as docker's json-file with
	// max-size only.
	w, dir := rotatingLog(t, LogConfig{Driver: LogDriverJSONFile, MaxSize: 1000})
	for i := range 100 {
		w.write(Stdout, false, []byte(lineText(i)))
	}
	if names := logNames(t, dir); !slices.Equal(names, []string{"container.log"}) {
		t.Fatalf("files %q", names)
	}
	from := firstLine(t, dir, 1)
	consecutive(t, readDir(t, dir, 1, LogOptions{Tail: -1}), from, 100)
}

func TestLogRotationUnlimited(t *testing.T) {
	w, dir := rotatingLog(t, LogConfig{Driver: LogDriverJSONFile})
	for i := range 1000 {
		w.write(Stdout, false, []byte(lineText(i)))
	}
	if names := logNames(t, dir); !slices.Equal(names, []string{"container.log"}) {
		t.Fatalf("files %q", names)
	}
	consecutive(t, readDir(t, dir, 1, LogOptions{Tail: -1}), 0, 1000)
}

func TestLogRotationCompress(t *testing.T) {
	w, dir := rotatingLog(t, LogConfig{MaxSize: 1000, MaxFile: 4})
	for i := range 500 {
		w.write(Stdout, false, []byte(lineText(i)))
	}
	w.compressors.Wait()
	names := logNames(t, dir)
	if want := []string{"container.log", "container.log.1.gz", "container.log.2.gz", "container.log.3.gz"}; !slices.Equal(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
	from := firstLine(t, dir, 4)
	consecutive(t, readDir(t, dir, 4, LogOptions{Tail: -1}), from, 500)

	// Each .gz is a gzip file any tool reads, with the time of its last
	// line, and the identity of the file it was made from.
	f, err := os.Open(filepath.Join(dir, "container.log.1.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, ok := gzipIdentity(f)
	if !ok || id.ino == 0 || id.n != 32 || !strings.HasPrefix(string(id.first[:]), "20") {
		t.Errorf("gzip identity %+v, %v", id, ok)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	lastTime, _, _, _, err := parseLogLine([]byte(lines[len(lines)-1]))
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if fi.ModTime().Before(lastTime.Add(-logTimeSlack)) || fi.ModTime().Sub(lastTime) > time.Minute {
		t.Errorf("mtime %v, last line at %v", fi.ModTime(), lastTime)
	}
}

func TestLogRotationKeepsLongLinesTogether(t *testing.T) {
	no := false
	w, dir := rotatingLog(t, LogConfig{MaxSize: 1000, MaxFile: 5, Compress: &no})
	w.write(Stdout, false, []byte("before"))
	// Chunks of a long line on stdout, stderr lines in between: the file
	// is rotated only once the line is whole.
	chunk := strings.Repeat("x", 600)
	w.write(Stdout, true, []byte(chunk))
	w.write(Stderr, false, []byte("between"))
	w.write(Stdout, true, []byte(chunk))
	w.write(Stdout, false, []byte("end"))
	w.write(Stdout, false, []byte("after"))
	if names := logNames(t, dir); !slices.Equal(names, []string{"container.log", "container.log.1"}) {
		t.Fatalf("files %q", names)
	}
	got := readDir(t, dir, 5, LogOptions{Tail: 2})
	if want := []string{"stdout " + chunk + chunk + "end", "stdout after"}; !slices.Equal(got, want) {
		t.Errorf("tail 2: %q", got)
	}
	// Endless output without a newline is rotated all the same.
	for range 2 * forceRotateSlack / len(chunk) {
		w.write(Stdout, true, []byte(chunk))
	}
	fi, err := os.Stat(filepath.Join(dir, logFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 1000+forceRotateSlack+1000 {
		t.Errorf("the current file grew to %d bytes", fi.Size())
	}
}

func TestLogRotationFailureKeepsWriting(t *testing.T) {
	w, dir := rotatingLog(t, LogConfig{MaxSize: 1000, MaxFile: 3})
	for i := range 30 {
		w.write(Stdout, false, []byte(lineText(i)))
	}
	// The next file cannot be made: the log grows on, and nothing is
	// lost.
	block := filepath.Join(dir, "container.log.new")
	if err := os.MkdirAll(filepath.Join(block, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 30; i < 80; i++ {
		w.write(Stdout, false, []byte(lineText(i)))
	}
	consecutive(t, readDir(t, dir, 3, LogOptions{Tail: -1}), 0, 80)
	// Once it can, rotation goes on, and so does compression.
	if err := os.RemoveAll(block); err != nil {
		t.Fatal(err)
	}
	for i := 80; i < 200; i++ {
		w.write(Stdout, false, []byte(lineText(i)))
	}
	w.compressors.Wait()
	if names := logNames(t, dir); !slices.Equal(names, []string{"container.log", "container.log.1.gz", "container.log.2.gz"}) {
		t.Errorf("files %q", names)
	}
	consecutive(t, readDir(t, dir, 3, LogOptions{Tail: -1}), firstLine(t, dir, 3), 200)
}

func TestLogTailAcrossFiles(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			w, dir := rotatingLog(t, LogConfig{MaxSize: 1000, MaxFile: 4, Compress: &compress})
			for i := range 300 {
				w.write(Stdout, false, []byte(lineText(i)))
			}
			w.compressors.Wait()
			from := firstLine(t, dir, 4)
			kept := 300 - from
			for _, n := range []int{0, 1, 5, 19, 20, 21, 39, 40, 41, kept - 1, kept, kept + 1, 1000} {
				want := min(n, kept)
				consecutive(t, readDir(t, dir, 4, LogOptions{Tail: n}), 300-want, 300)
			}
		})
	}
}

func TestLogSinceAcrossFiles(t *testing.T) {
	no := false
	w, dir := rotatingLog(t, LogConfig{MaxSize: 1000, MaxFile: 10, Compress: &no})
	for i := range 100 {
		w.write(Stdout, false, []byte(lineText(i)))
	}
	// Make the first files old, as hours of output would.
	old := time.Now().Add(-time.Hour)
	for _, n := range []string{"container.log.4", "container.log.5"} {
		if err := os.Chtimes(filepath.Join(dir, n), old, old); err != nil {
			t.Fatal(err)
		}
	}
	since := time.Now()
	for i := 100; i < 200; i++ {
		w.write(Stdout, false, []byte(lineText(i)))
	}
	consecutive(t, readDir(t, dir, 10, LogOptions{Tail: -1, Since: since}), 100, 200)
	consecutive(t, readDir(t, dir, 10, LogOptions{Tail: 30, Since: since}), 170, 200)
}

func TestOpenLogRecovers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	line := func(i int) string {
		return string(appendLogLine(nil, time.Now(), Stdout, false, []byte(lineText(i))))
	}
	// A monitor killed during a compression (its temp file), after one
	// (the .gz in place, the plain file not yet removed) and before one.
	write("container.log.3", line(0))
	write("container.log.2", line(1))
	src, err := os.Open(filepath.Join(dir, "container.log.2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compressLogFile(src, filepath.Join(dir, "container.log.2.gz")); err != nil {
		t.Fatal(err)
	}
	src.Close()
	write("container.log.1", line(2))
	write("container.log.gz.tmp", "half")
	write("container.log.new", "")
	write(logFile, line(3))
	w, err := openLog(dir, LogConfig{MaxFile: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	w.compressors.Wait()
	want := []string{"container.log", "container.log.1.gz", "container.log.2.gz", "container.log.3.gz"}
	if names := logNames(t, dir); !slices.Equal(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
	consecutive(t, readDir(t, dir, 4, LogOptions{Tail: -1}), 0, 4)
	// The writer appends to the current file.
	w.write(Stdout, false, []byte(lineText(4)))
	consecutive(t, readDir(t, dir, 4, LogOptions{Tail: -1}), 0, 5)
}

func TestLogSegmentsSeenOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, logFile)
	var text []byte
	for i := range 3 {
		text = appendLogLine(text, time.Now(), Stdout, false, []byte(lineText(i)))
	}
	if err := os.WriteFile(path, text, 0o640); err != nil {
		t.Fatal(err)
	}
	// Mid-rotation: the current file also named container.log.1, and its
	// compressed copy already at container.log.2.gz (a listing that
	// overlaps a shift sees a file at two places).
	if err := os.Link(path, rotatedName(path, 1, false)); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := compressLogFile(src, rotatedName(path, 2, true)); err != nil {
		t.Fatal(err)
	}
	consecutive(t, readDir(t, dir, 5, LogOptions{Tail: -1}), 0, 3)
	consecutive(t, readDir(t, dir, 5, LogOptions{Tail: 2}), 1, 3)
}

// logContainer makes a container whose spec has cfg, running as far as
// readers can tell, and opens its log as its monitor would.
func logContainer(t *testing.T, cfg LogConfig) (*Runtime, *Container, *logWriter) {
	t.Helper()
	r, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Create(context.Background(), Spec{Name: "rot", Log: cfg})
	if err != nil {
		t.Fatal(err)
	}
	start, err := procStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := writeState(c.Dir, State{Status: Running, MonitorPid: os.Getpid(), MonitorStart: start}); err != nil {
		t.Fatal(err)
	}
	w, err := openLog(c.Dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.close() })
	return r, c, w
}

// follow starts a follower of the container's log; the lines arrive on the
// channel, its end on done.
func follow(r *Runtime, name string, opts LogOptions) (<-chan string, chan error) {
	lines := make(chan string, 100000)
	done := make(chan error, 1)
	go func() {
		done <- r.ReadLogs(context.Background(), name, opts, func(e LogEntry) error {
			lines <- string(e.Text)
			return nil
		})
	}()
	return lines, done
}

func TestReadLogsFollowAcrossRotation(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			// Enough files that a follower that lags does not lose any:
			// every line must arrive once, in order.
			r, c, w := logContainer(t, LogConfig{MaxSize: 2000, MaxFile: 100, Compress: &compress})
			w.write(Stdout, false, []byte(lineText(0)))
			lines, done := follow(r, "rot", LogOptions{Tail: -1, Follow: true})
			const n = 3000 // 75 rotations
			for i := 1; i < n; i++ {
				w.write(Stdout, false, []byte(lineText(i)))
			}
			if err := writeState(c.Dir, State{Status: Exited}); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("follow did not end after the container exited")
			}
			// The follower has returned: every line it read is queued.
			i := 0
			for len(lines) > 0 {
				if l, want := <-lines, lineText(i); l != want {
					t.Fatalf("line %d: %q, want %q", i, l, want)
				}
				i++
			}
			if i != n {
				t.Fatalf("%d lines, want %d", i, n)
			}
		})
	}
}

func TestReadLogsFollowerHoldsTheOldFile(t *testing.T) {
	// The follower has read part of a file when it is rotated away (and
	// compressed, and removed as the oldest): it reads that file to its
	// end, then the next, then waits on the new current one.
	r, c, w := logContainer(t, LogConfig{MaxSize: 1000, MaxFile: 2})
	w.write(Stdout, false, []byte(lineText(0)))
	lines, done := follow(r, "rot", LogOptions{Tail: -1, Follow: true})
	next := 0
	expect := func(upTo int) {
		t.Helper()
		for next < upTo {
			select {
			case l := <-lines:
				if want := lineText(next); l != want {
					t.Fatalf("got %q, want %q", l, want)
				}
				next++
			case err := <-done:
				// The follower sends its last lines before it returns:
				// both may be ready at once.
				done <- err
				if len(lines) == 0 {
					t.Fatalf("follow ended early (%v)", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no %q within 10s", lineText(next))
			}
		}
	}
	expect(1)
	w.write(Stdout, false, []byte(lineText(1)))
	expect(2)
	for i := 2; i < 30; i++ { // past one rotation, ~19 lines a file
		w.write(Stdout, false, []byte(lineText(i)))
	}
	expect(30)
	w.compressors.Wait()
	for i := 30; i < 50; i++ {
		w.write(Stdout, false, []byte(lineText(i)))
	}
	expect(50)
	w.write(Stdout, false, []byte(lineText(50)))
	if err := writeState(c.Dir, State{Status: Exited}); err != nil {
		t.Fatal(err)
	}
	expect(51)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-lines:
		t.Fatalf("a line after the last: %q", l)
	default:
	}
}

func TestReadLogsDriverNone(t *testing.T) {
	r, c, w := logContainer(t, LogConfig{Driver: LogDriverNone})
	w.write(Stdout, false, []byte("secret"))
	data, err := os.ReadFile(c.LogPath())
	if err != nil || len(data) != 0 {
		t.Fatalf("log %q, %v: want empty", data, err)
	}
	var got []string
	err = r.ReadLogs(context.Background(), "rot", LogOptions{Tail: -1}, func(e LogEntry) error {
		got = append(got, string(e.Text))
		return nil
	})
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadLogs: %q, %v", got, err)
	}
	// A follower waits for the end, as for a log that never grows.
	_, done := follow(r, "rot", LogOptions{Tail: -1, Follow: true})
	select {
	case err := <-done:
		t.Fatalf("follow of a running container ended: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := writeState(c.Dir, State{Status: Exited}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end after the container exited")
	}
}

// Readers never see a file missing or a line twice while the monitor
// rotates: many listings race one writer.
func TestLogListingRacesRotation(t *testing.T) {
	no := false
	w, dir := rotatingLog(t, LogConfig{MaxSize: 500, MaxFile: 3, Compress: &no})
	const n = 20000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 1)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				segs, err := openLogSegments(filepath.Join(dir, logFile), 3)
				if err != nil {
					errs <- err
					return
				}
				var got []int
				lr, err := readSegments(segs, LogOptions{Tail: -1}, func(e LogEntry) error {
					var i int
					fmt.Sscanf(string(e.Text), "line %d", &i)
					got = append(got, i)
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				lr.close()
				for j := 1; j < len(got); j++ {
					if got[j] <= got[j-1] {
						errs <- fmt.Errorf("line %d after line %d", got[j], got[j-1])
						return
					}
				}
			}
		}()
	}
	for i := range n {
		w.write(Stdout, false, []byte(lineText(i)))
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// A real monitor rotates and compresses a container's log while the
// container writes on; logs reads the files it keeps.
func TestMonitorRotatesLog(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "rotate", "seq 1 100000; echo done; exec sleep 300")
	spec.Log = LogConfig{MaxSize: 256 << 10, MaxFile: 4}
	c := run(t, r, spec)
	waitLog(t, r, spec.Name, "stdout done")
	waitFor(t, "the rotated files to be compressed", func() bool {
		names := logNames(t, c.Dir)
		return slices.Contains(names, "container.log.3.gz") && !slices.ContainsFunc(names, func(n string) bool {
			return strings.HasPrefix(n, "container.log.") && !strings.HasSuffix(n, ".gz")
		})
	})
	for _, n := range logNames(t, c.Dir) {
		if strings.HasPrefix(n, "container.log.4") {
			t.Errorf("%s kept: max-file is 4", n)
		}
	}
	lines := logLines(t, r, spec.Name)
	if len(lines) < 3*(256<<10)/47 || last(lines) != "stdout done" {
		t.Fatalf("%d lines, the last %q", len(lines), last(lines))
	}
	var from int
	fmt.Sscanf(lines[0], "stdout %d", &from)
	for i, l := range lines[:len(lines)-1] {
		if want := fmt.Sprintf("stdout %d", from+i); l != want {
			t.Fatalf("line %d: %q, want %q", i, l, want)
		}
	}
	if from+len(lines)-2 != 100000 {
		t.Errorf("lines %d to %d", from, from+len(lines)-2)
	}
	// What compressing cost the monitor is given back.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", c.State.MonitorPid))
	if err == nil {
		for line := range strings.Lines(string(data)) {
			if strings.HasPrefix(line, "Pss_Anon:") {
				t.Logf("monitor after %d rotations: %s", 100000*47/(256<<10), strings.TrimSpace(line))
			}
		}
	}
}

// BenchmarkLogWriteRotating: one line of output into a log rotated every
// MiB into 3 compressed files, what the monitor does per line.
func BenchmarkLogWriteRotating(b *testing.B) {
	w, _ := rotatingLog(b, LogConfig{MaxSize: 1 << 20, MaxFile: 3})
	text := []byte("request 12345 served in 1.2ms: GET /api/items?page=7 200")
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		w.write(Stdout, false, text)
	}
	b.StopTimer()
	w.compressors.Wait()
}
