package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// Benchmarks of whole commands, as a user runs them. Each measures its own
// repetitions and reports medians, so run them with -benchtime 1x (make bench).

// benchProject writes a compose file of n services running cmd, imports the
// busybox image, and returns the folder and state root.
func benchProject(b *testing.B, name string, n int, command string) (dir, root string) {
	b.Helper()
	var c strings.Builder
	fmt.Fprintf(&c, "name: %s\nservices:\n", name)
	for i := range n {
		fmt.Fprintf(&c, "  s%d:\n    image: bb\n    command: %s\n", i, command)
	}
	return benchCompose(b, c.String())
}

// benchCompose writes compose as the project's file, imports the busybox
// image as bb, and returns the folder and state root.
func benchCompose(b *testing.B, compose string) (dir, root string) {
	b.Helper()
	imagetest.NeedRoot(b)
	dir, root = b.TempDir(), b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bb.tar"), imagetest.RootfsTar(b), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		b.Fatal(err)
	}
	benchRun(b, dir, root, "image", "import", "bb.tar", "bb")
	b.Cleanup(func() { benchCmd(dir, root, "down", "-t", "0").Run() })
	return dir, root
}

func benchCmd(dir, root string, args ...string) *exec.Cmd {
	bin := os.Getenv("BERTH_BIN")
	if bin == "" {
		bin = "berth"
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BERTH_ROOT="+root, "NO_COLOR=1", "BERTH_IFPREFIX=bt-",
		"BERTH_ADDRESS_POOLS=10.213.124.0/22:26")
	return cmd
}

// benchRun runs berth and returns how long it took.
func benchRun(b *testing.B, dir, root string, args ...string) time.Duration {
	b.Helper()
	start := time.Now()
	out, err := benchCmd(dir, root, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return time.Since(start)
}

func median(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2]) / float64(time.Millisecond)
}

// BenchmarkUpDown: `up -d` then `down` of N services that sleep.
func BenchmarkUpDown(b *testing.B) {
	for _, n := range []int{1, 10, 30} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			dir, root := benchProject(b, fmt.Sprintf("bench%d", n), n, `[sleep, "300"]`)
			var ups, downs []time.Duration
			for range 5 {
				ups = append(ups, benchRun(b, dir, root, "up", "-d"))
				downs = append(downs, benchRun(b, dir, root, "down", "-t", "1"))
			}
			b.ReportMetric(median(ups), "up-ms")
			b.ReportMetric(median(downs), "down-ms")
		})
	}
}

// BenchmarkUpNoChange30: `up -d` of 30 running services whose file has not
// changed, which must recreate (and restart) nothing.
func BenchmarkUpNoChange30(b *testing.B) {
	dir, root := benchProject(b, "benchnc", 30, `[sleep, "300"]`)
	benchRun(b, dir, root, "up", "-d")
	before := containerIDs(b, root)
	var times []time.Duration
	for range 9 {
		times = append(times, benchRun(b, dir, root, "up", "-d"))
	}
	if after := containerIDs(b, root); !slices.Equal(before, after) {
		b.Fatalf("a no-change up replaced containers:\nbefore %q\nafter  %q", before, after)
	}
	b.ReportMetric(median(times), "ms")
}

// BenchmarkUpWaitHealthyChain10: `up -d --wait` of ten services in a chain,
// each depending on the previous one being healthy, with a probe every 50 ms
// in the start period: the cost of health waits on the critical path.
func BenchmarkUpWaitHealthyChain10(b *testing.B) {
	var c strings.Builder
	c.WriteString("name: benchchain\nservices:\n")
	for i := range 10 {
		fmt.Fprintf(&c, "  s%d:\n    image: bb\n    command: [sleep, \"300\"]\n", i)
		c.WriteString("    healthcheck: {test: [CMD, \"true\"], interval: 100ms, start_period: 10s, start_interval: 50ms}\n")
		if i > 0 {
			fmt.Fprintf(&c, "    depends_on: {s%d: {condition: service_healthy}}\n", i-1)
		}
	}
	dir, root := benchCompose(b, c.String())
	var ups []time.Duration
	for range 5 {
		ups = append(ups, benchRun(b, dir, root, "up", "-d", "--wait"))
		benchRun(b, dir, root, "down", "-t", "0")
	}
	b.ReportMetric(median(ups), "up-wait-ms")
}

// containerIDs lists the IDs of every container under root, by name.
func containerIDs(b *testing.B, root string) []string {
	rt, err := runtime.New(filepath.Join(root, "containers"))
	if err != nil {
		b.Fatal(err)
	}
	cs, err := rt.List()
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.Spec.Name+"="+c.Spec.ID)
	}
	return ids
}

// BenchmarkLogs200k: `berth logs` of one container's 200,000 lines.
func BenchmarkLogs200k(b *testing.B) {
	dir, root := benchProject(b, "benchlogs", 1, `[seq, "1", "200000"]`)
	benchRun(b, dir, root, "up", "-d")
	rt, err := runtime.New(filepath.Join(root, "containers"))
	if err != nil {
		b.Fatal(err)
	}
	waitExited(b, rt, "benchlogs-s0-1")
	var times []time.Duration
	for range 7 {
		cmd := benchCmd(dir, root, "logs")
		cmd.Stdout = nil // /dev/null: measure berth, not a pipe reader
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	b.ReportMetric(median(times), "ms")
}

// BenchmarkMonitorPSS: the proportional memory of each running container's
// monitor, from /proc/PID/smaps_rollup, with ten containers up.
func BenchmarkMonitorPSS(b *testing.B) {
	dir, root := benchProject(b, "benchpss", 10, `[sleep, "300"]`)
	benchRun(b, dir, root, "up", "-d")
	rt, err := runtime.New(filepath.Join(root, "containers"))
	if err != nil {
		b.Fatal(err)
	}
	cs, err := rt.List()
	if err != nil {
		b.Fatal(err)
	}
	var total int
	for _, c := range cs {
		total += pssKiB(b, c.State.MonitorPid)
	}
	b.ReportMetric(float64(total)/float64(len(cs)), "KiB-per-ctr")
}

func pssKiB(b *testing.B, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	b.Fatalf("no Pss in smaps_rollup of %d", pid)
	return 0
}

func waitExited(b *testing.B, rt *runtime.Runtime, name string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := rt.Get(name); err == nil && c.State.Status == runtime.Exited {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("%s did not exit", name)
}
