package tui

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// batchLines is what one service logging 10,000 lines a second writes in
// the 50 ms a batch waits for.
const batchLines = 500

// accessLine is a line of a web server's log, i its number: 80 to 100
// bytes, each one a string of its own as the Source makes them.
func accessLine(i int) string {
	b := make([]byte, 0, 112)
	b = append(b, "10.0.0."...)
	b = strconv.AppendInt(b, int64(i%250), 10)
	b = append(b, ` - - "GET /api/orders/`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ` HTTP/1.1" 200 `...)
	b = strconv.AppendInt(b, int64(100+i%900), 10)
	b = append(b, ` "curl/8.5.0" rt=0.0`...)
	b = strconv.AppendInt(b, int64(i%97), 10)
	return string(b)
}

func benchContainers() []Container {
	var cs []Container
	for _, s := range []string{"web", "api", "db", "worker"} {
		cs = append(cs, Container{Name: s + "-1", Service: s, State: Running, StartedAt: t0})
	}
	return cs
}

// BenchmarkAbsorb is how fast the model takes in the lines of one noisy
// service: batches of batchLines, each followed by a View as bubbletea
// draws after every message, on a 200×60 screen in colour. It reports
// lines/s, and ms/batch: the longest a key press waits behind a batch.
func BenchmarkAbsorb(b *testing.B) {
	for _, c := range []struct {
		name string
		keys []string
	}{
		{"follow", nil},
		{"filter+search", []string{"f", "orders/1", "enter", "/", "orders/12", "enter"}},
		{"paused+wrap", []string{"w", "t", "pgup"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			// Distinct lines for 40 batches, sent over and over: the
			// ring of 10,000 lines turns over every 20 batches.
			batches := make([][]LogLine, 40)
			for k := range batches {
				batches[k] = logLines("web-1", "web", t0.Add(time.Duration(k)*time.Minute), batchLines, func(i int) string {
					return accessLine(k*batchLines + i)
				})
			}
			src := &fakeSource{containers: benchContainers()}
			opts := testOptions()
			opts.LogLines = DefaultLogLines
			m := newTestModel(b, src, opts, 200, 60, true)
			m.Update(logsMsg{lines: batches[0]})
			press(m, c.keys...)
			n := 0
			for b.Loop() {
				m.Update(logsMsg{lines: batches[n%len(batches)]})
				_ = m.View()
				n++
			}
			b.ReportMetric(float64(n*batchLines)/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(n), "ms/batch")
		})
	}
}

// BenchmarkLogs1M feeds a million distinct lines from four services, one
// of them three quarters of the lot, into a model with the default ring
// (DefaultLogLines per service). It reports the heap the model holds
// after (heap-bytes), the lines it keeps (kept-lines), and the slowest of
// the key presses that work on everything kept (key-ms): selecting a
// service, setting a filter, searching, going to the oldest line.
func BenchmarkLogs1M(b *testing.B) {
	const total = 1_000_000
	svcs := []string{"web", "api", "db", "worker"}
	var heap, kept uint64
	var slowest time.Duration
	for b.Loop() {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc

		src := &fakeSource{containers: benchContainers()}
		opts := testOptions()
		opts.LogLines = DefaultLogLines
		m := newTestModel(b, src, opts, 200, 60, true)
		batch := make([]LogLine, 0, batchLines)
		for i := range total {
			s := svcs[0]
			if i%4 == 3 {
				s = svcs[i/4%len(svcs)]
			}
			batch = append(batch, LogLine{Container: s + "-1", Service: s, Time: t0.Add(time.Duration(i) * time.Millisecond), Stream: "stdout", Text: accessLine(i)})
			if len(batch) == batchLines {
				m.Update(logsMsg{lines: batch})
				batch = make([]LogLine, 0, batchLines)
			}
		}
		_ = m.View()

		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap = ms.HeapAlloc - base
		kept = 0
		for _, r := range m.store.rings {
			kept += r.next - r.first
		}

		for _, keys := range [][]string{{"down"}, {"up"}, {"f", "orders/9", "enter"}, {"/", "rt=0.042", "enter"}, {"home"}, {"N"}} {
			start := time.Now()
			press(m, keys...)
			_ = m.View()
			slowest = max(slowest, time.Since(start))
		}
		runtime.KeepAlive(m)
	}
	b.ReportMetric(float64(heap), "heap-bytes")
	b.ReportMetric(float64(kept), "kept-lines")
	b.ReportMetric(float64(slowest)/float64(time.Millisecond), "key-ms")
}

// The benchmarks' lines look like what they claim.
func TestAccessLine(t *testing.T) {
	for _, i := range []int{0, 999_999} {
		if l := accessLine(i); len(l) < 60 || len(l) > 112 {
			t.Errorf("line %d is %d bytes: %q", i, len(l), l)
		}
	}
}
