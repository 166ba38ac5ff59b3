package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// These tests run real containers through the Runtime API: the monitor and
// the init are this test binary re-executed (TestMain dispatches the roles).
// With BERTH_BIN set to a built berth, the monitors are that binary instead,
// so that their memory is the product's, not a race-instrumented test's.

// testRuntime is a Runtime in a fresh, deep root whose containers are all
// deleted when the test ends.
func testRuntime(t *testing.T) *Runtime {
	t.Helper()
	imagetest.NeedRoot(t)
	imagetest.NeedBusybox(t)
	// Deep enough that a socket path under it would not fit in 108 bytes.
	root := filepath.Join(t.TempDir(), strings.Repeat("r", 60), "containers")
	r, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if bin := os.Getenv("BERTH_BIN"); bin != "" {
		r.exe = bin
	}
	t.Cleanup(func() {
		list, err := r.List()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, c := range list {
			if err := r.Delete(ctx, c.Spec.Name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			checkNoCgroup(t, c.Spec.Name)
		}
	})
	return r
}

// uniqueName is a container name no other test run on this host uses: the
// cgroups "berth/NAME" are host-wide.
func uniqueName(t *testing.T, base string) string {
	var b [4]byte
	rand.Read(b[:])
	return "rt-" + base + "-" + hex.EncodeToString(b[:])
}

// shSpec is a busybox container running script with /bin/sh.
func shSpec(t *testing.T, base, script string) Spec {
	return Spec{
		Name:     uniqueName(t, base),
		Hostname: base,
		Layers:   []string{imagetest.Rootfs(t)},
		Args:     []string{"/bin/sh", "-c", script},
		Env:      []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	}
}

// run creates and starts spec.
func run(t *testing.T, r *Runtime, spec Spec) *Container {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.Name); err != nil {
		t.Fatalf("start %s: %v", spec.Name, err)
	}
	c, err := r.Get(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds, failing the test after 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitStatus(t *testing.T, r *Runtime, name string, want Status) *Container {
	t.Helper()
	var c *Container
	waitFor(t, fmt.Sprintf("%s to be %s", name, want), func() bool {
		var err error
		c, err = r.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		return c.State.Status == want
	})
	return c
}

// logLines reads the container's log whole, as "stream text" lines.
func logLines(t *testing.T, r *Runtime, name string) []string {
	t.Helper()
	var out []string
	err := r.ReadLogs(context.Background(), name, LogOptions{Tail: -1}, func(e LogEntry) error {
		out = append(out, e.Stream+" "+string(e.Text))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitLog(t *testing.T, r *Runtime, name, line string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%q in the log of %s", line, name), func() bool {
		for _, l := range logLines(t, r, name) {
			if l == line {
				return true
			}
		}
		return false
	})
}

func checkNoCgroup(t *testing.T, name string) {
	t.Helper()
	for _, p := range cgroupPaths(name) {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left behind (%v)", p, err)
		}
	}
}

// ppid is the parent of pid, from /proc/PID/stat.
func procField(t *testing.T, pid int, field int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	n, err := strconv.Atoi(fields[field-3])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestContainerOutputAndExit(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "out", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3")
	run(t, r, spec)
	c := waitStatus(t, r, spec.Name, Exited)
	if c.State.ExitCode != 3 || c.State.FinishedAt.IsZero() || c.State.StartedAt.IsZero() || c.State.Pid != 0 {
		t.Errorf("state %+v", c.State)
	}
	var stdout, stderr []string
	for _, l := range logLines(t, r, spec.Name) {
		switch s, text, _ := strings.Cut(l, " "); s {
		case Stdout:
			stdout = append(stdout, text)
		case Stderr:
			stderr = append(stderr, text)
		}
	}
	if strings.Join(stdout, ",") != "out1,out2" || strings.Join(stderr, ",") != "err1,err2" {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
	checkNoCgroup(t, spec.Name)
	if _, err := os.Stat(filepath.Join(c.Dir, monitorSock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left: %v", err)
	}
}

func TestOutputVolumeAndLongLines(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "volume", "head -c 40000 /dev/zero | tr '\\0' x; echo; seq 1 3000; seq 1 1000 >&2")
	run(t, r, spec)
	waitStatus(t, r, spec.Name, Exited)
	var stdout, stderr []string
	for _, l := range logLines(t, r, spec.Name) {
		switch s, text, _ := strings.Cut(l, " "); s {
		case Stdout:
			stdout = append(stdout, text)
		case Stderr:
			stderr = append(stderr, text)
		}
	}
	if len(stdout) != 3001 || len(stderr) != 1000 {
		t.Fatalf("%d stdout and %d stderr lines, want 3001 and 1000", len(stdout), len(stderr))
	}
	if stdout[0] != strings.Repeat("x", 40000) {
		t.Errorf("the long line came out as %d bytes", len(stdout[0]))
	}
	for i, l := range stdout[1:] {
		if l != strconv.Itoa(i+1) {
			t.Fatalf("stdout line %d is %q", i+1, l)
		}
	}
	for i, l := range stderr {
		if l != strconv.Itoa(i+1) {
			t.Fatalf("stderr line %d is %q", i, l)
		}
	}
	// The long line is in the file as chunks of at most 16 KiB.
	data, err := os.ReadFile(filepath.Join(r.dir, spec.Name, logFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), " stdout P "); n != 2 {
		t.Errorf("%d partial chunks, want 2", n)
	}
}

func TestFollowEndsWhenContainerExits(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "follow", "echo first; sleep 0.5; echo second >&2; sleep 0.2; echo third")
	run(t, r, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	err := r.ReadLogs(ctx, spec.Name, LogOptions{Tail: -1, Follow: true}, func(e LogEntry) error {
		got = append(got, e.Stream+" "+string(e.Text))
		return nil
	})
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	if want := "stdout first|stderr second|stdout third"; strings.Join(got, "|") != want {
		t.Errorf("followed %q, want %q", got, want)
	}
	if c, _ := r.Get(spec.Name); c.State.Status != Exited {
		t.Errorf("follow ended while the container is %s", c.State.Status)
	}
}

func TestStartFailsWithInitMessage(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "nosuch", "")
	spec.Args = []string{"nosuch"}
	ctx := context.Background()
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	err := r.Start(ctx, spec.Name)
	if err == nil {
		t.Fatal("start of a missing command succeeded")
	}
	if want := `exec: "nosuch": executable file not found in $PATH`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	c, err := r.Get(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	// As docker: still created, exit code 127, the error recorded.
	if c.State.Status != Created || c.State.ExitCode != 127 || !strings.Contains(c.State.Error, "nosuch") {
		t.Errorf("state %+v", c.State)
	}
	checkNoCgroup(t, spec.Name)
	if _, err := os.Stat(filepath.Join(c.Dir, monitorSock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left: %v", err)
	}
}

func TestStartCancelledLeavesNothing(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "cancel", "echo up; while true; do sleep 0.05; done")
	if _, err := r.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Start(ctx, spec.Name); !errors.Is(err, context.Canceled) {
		t.Fatalf("start with a cancelled context: %v", err)
	}
	c, err := r.Get(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Status == Running || c.State.Status == Dead || c.orphaned {
		t.Errorf("status %s after a cancelled start", c.State.Status)
	}
	checkNoCgroup(t, spec.Name)
	// It starts normally afterwards.
	if err := r.Start(context.Background(), spec.Name); err != nil {
		t.Fatal(err)
	}
	waitLog(t, r, spec.Name, "stdout up")
}

func TestStopSignal(t *testing.T) {
	for _, tc := range []struct {
		stopSignal string
		trap       string
	}{
		{"", "TERM"},
		{"SIGINT", "INT"},
		{"USR1", "USR1"},
	} {
		t.Run(tc.trap, func(t *testing.T) {
			r := testRuntime(t)
			spec := shSpec(t, "trap", fmt.Sprintf("trap 'echo got %s; exit 0' %s; echo ready; while true; do sleep 0.05; done", tc.trap, tc.trap))
			spec.StopSignal = tc.stopSignal
			run(t, r, spec)
			waitLog(t, r, spec.Name, "stdout ready")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			if err := r.Stop(ctx, spec.Name, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("stop took %v: the signal was not handled", d)
			}
			c, err := r.Get(spec.Name)
			if err != nil {
				t.Fatal(err)
			}
			// Stop returns once the exit is recorded.
			if c.State.Status != Exited || c.State.ExitCode != 0 {
				t.Errorf("state after stop %+v", c.State)
			}
			lines := logLines(t, r, spec.Name)
			if len(lines) == 0 || lines[len(lines)-1] != "stdout got "+tc.trap {
				t.Errorf("log %q", lines)
			}
		})
	}
}

func TestStopGracePeriod(t *testing.T) {
	r := testRuntime(t)
	// It catches TERM and goes on: a handler that does nothing, which only
	// SIGKILL after the grace period ends. (A signal PID 1 has no handler
	// for is dropped by the kernel, so the monitor kills at once then.)
	spec := shSpec(t, "stubborn", "trap 'echo not stopping' TERM; echo ready; while true; do sleep 0.05; done")
	run(t, r, spec)
	waitLog(t, r, spec.Name, "stdout ready")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const grace = 700 * time.Millisecond
	start := time.Now()
	if err := r.Stop(ctx, spec.Name, grace); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < grace || d > grace+10*time.Second {
		t.Errorf("stop took %v with a grace period of %v", d, grace)
	}
	c, _ := r.Get(spec.Name)
	if c.State.Status != Exited || c.State.ExitCode != 137 {
		t.Errorf("state %+v, want exited 137", c.State)
	}
	// Stop again: nothing to do.
	if err := r.Stop(ctx, spec.Name, grace); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestKillSignal(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "kill", "trap 'echo got HUP' HUP; echo ready; while true; do sleep 0.05; done")
	run(t, r, spec)
	waitLog(t, r, spec.Name, "stdout ready")
	ctx := context.Background()
	if err := r.Kill(ctx, spec.Name, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, r, spec.Name, "stdout got HUP")
	if c, _ := r.Get(spec.Name); c.State.Status != Running {
		t.Errorf("status %s after a handled signal", c.State.Status)
	}
	if err := r.Kill(ctx, spec.Name, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c := waitStatus(t, r, spec.Name, Exited)
	if c.State.ExitCode != 137 {
		t.Errorf("exit code %d after SIGKILL", c.State.ExitCode)
	}
	if err := r.Kill(ctx, spec.Name, syscall.SIGKILL); !errors.Is(err, ErrNotRunning) {
		t.Errorf("kill of an exited container: %v", err)
	}
}

func TestRestartKeepsFilesAndLog(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "restart", "cat /kept 2>/dev/null || echo none; echo run >> /kept")
	run(t, r, spec)
	waitStatus(t, r, spec.Name, Exited)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := r.Start(ctx, spec.Name); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, r, spec.Name, Exited)
	}
	want := "stdout none|stdout run|stdout run|stdout run"
	if got := strings.Join(logLines(t, r, spec.Name), "|"); got != want {
		t.Errorf("log %q, want %q", got, want)
	}
}

func TestStartRunningIsNoop(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "noop", "while true; do sleep 0.05; done")
	c := run(t, r, spec)
	if err := r.Start(context.Background(), spec.Name); err != nil {
		t.Fatal(err)
	}
	c2, _ := r.Get(spec.Name)
	if c2.State.MonitorPid != c.State.MonitorPid || c2.State.Pid != c.State.Pid {
		t.Errorf("a second monitor: %+v then %+v", c.State, c2.State)
	}
}

// TestHelperStart is not a test: TestContainerOutlivesCaller runs it in a
// child process that starts a container and exits.
func TestHelperStart(t *testing.T) {
	root, name := os.Getenv("BERTH_TEST_HELPER_ROOT"), os.Getenv("BERTH_TEST_HELPER_NAME")
	if root == "" {
		t.Skip("helper process only")
	}
	r, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if bin := os.Getenv("BERTH_BIN"); bin != "" {
		r.exe = bin
	}
	if err := r.Start(context.Background(), name); err != nil {
		t.Fatal(err)
	}
}

func TestContainerOutlivesCaller(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "orphan", "echo ready; while true; do sleep 0.05; done")
	if _, err := r.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStart$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BERTH_TEST_HELPER_ROOT="+r.dir, "BERTH_TEST_HELPER_NAME="+spec.Name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	// The process that started it is gone; the container runs on.
	waitLog(t, r, spec.Name, "stdout ready")
	c, err := r.Get(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Status != Running || !processAlive(c.State.MonitorPid, c.State.MonitorStart) {
		t.Fatalf("state %+v", c.State)
	}
	if ppid := procField(t, c.State.MonitorPid, 4); ppid == os.Getpid() || ppid == cmd.Process.Pid {
		t.Errorf("the monitor's parent is %d, a test process", ppid)
	}
	if sid := procField(t, c.State.MonitorPid, 6); sid != c.State.MonitorPid {
		t.Errorf("the monitor is in session %d, not its own", sid)
	}
	if ppid := procField(t, c.State.Pid, 4); ppid != c.State.MonitorPid {
		t.Errorf("the container's parent is %d, not its monitor %d", ppid, c.State.MonitorPid)
	}
	if err := r.Stop(context.Background(), spec.Name, 0); err != nil {
		t.Fatal(err)
	}
}

func TestMonitorKilledKillsOnlyItsContainer(t *testing.T) {
	r := testRuntime(t)
	a := run(t, r, shSpec(t, "victim", "while true; do sleep 0.05; done"))
	b := run(t, r, shSpec(t, "bystander", "while true; do sleep 0.05; done"))
	if err := syscall.Kill(a.State.MonitorPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Pdeathsig took the container's process with its monitor: killed.
	if c := waitStatus(t, r, a.Spec.Name, Exited); c.State.ExitCode != 137 {
		t.Errorf("exit code %d, want 137", c.State.ExitCode)
	}
	waitFor(t, "the victim's process to die", func() bool {
		return syscall.Kill(a.State.Pid, 0) != nil || procStateIs(a.State.Pid, 'Z')
	})
	if c, _ := r.Get(b.Spec.Name); c.State.Status != Running || syscall.Kill(b.State.Pid, 0) != nil {
		t.Errorf("the other container is %s", c.State.Status)
	}

	ctx := context.Background()
	if err := r.Delete(ctx, a.Spec.Name); err != nil {
		t.Fatal(err)
	}
	checkNoCgroup(t, a.Spec.Name)
	if _, err := os.Stat(a.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory left: %v", err)
	}
	if c, _ := r.Get(b.Spec.Name); c.State.Status != Running {
		t.Errorf("the other container is %s after the delete", c.State.Status)
	}
	// Deleting a running container kills it and leaves nothing.
	if err := r.Delete(ctx, b.Spec.Name); err != nil {
		t.Fatal(err)
	}
	checkNoCgroup(t, b.Spec.Name)
	if _, err := os.Stat(b.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory left: %v", err)
	}
	if syscall.Kill(b.State.Pid, 0) == nil && !procStateIs(b.State.Pid, 'Z') {
		t.Error("the deleted container's process lives on")
	}
}

func TestDeadContainerStartsAgain(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "phoenix", "echo up; while true; do sleep 0.05; done")
	c := run(t, r, spec)
	// The output of a container whose monitor is killed is lost with it:
	// let the first line reach the log.
	waitLog(t, r, spec.Name, "stdout up")
	if err := syscall.Kill(c.State.MonitorPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r, spec.Name, Exited)
	if err := r.Start(context.Background(), spec.Name); err != nil {
		t.Fatal(err)
	}
	c2, _ := r.Get(spec.Name)
	if c2.State.Status != Running || c2.State.MonitorPid == c.State.MonitorPid {
		t.Fatalf("state %+v", c2.State)
	}
	waitFor(t, "two runs in the log", func() bool {
		return strings.Count(strings.Join(logLines(t, r, spec.Name), "|"), "stdout up") == 2
	})
}

func procStateIs(pid int, state byte) bool {
	s, _, err := procStat(pid)
	return err == nil && s == state
}

// TestMonitorMemory measures what each running monitor costs: its PSS
// (proportional set size: private pages plus a share of those it shares with
// the other monitors, such as the binary's text). The target is ≤ 1 MB with
// a built berth (BERTH_BIN); the race-instrumented test binary is far above.
func TestMonitorMemory(t *testing.T) {
	r := testRuntime(t)
	var cs []*Container
	for i := 0; i < 3; i++ {
		cs = append(cs, run(t, r, shSpec(t, "mem", "echo ready; while true; do sleep 0.05; done")))
	}
	for _, c := range cs {
		waitLog(t, r, c.Spec.Name, "stdout ready")
	}
	exe := "test binary"
	if bin := os.Getenv("BERTH_BIN"); bin != "" {
		exe = bin
	}
	for _, c := range cs {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", c.State.MonitorPid))
		if err != nil {
			t.Fatal(err)
		}
		kb := map[string]int{}
		for line := range strings.Lines(string(data)) {
			f := strings.Fields(line)
			if len(f) == 3 && f[2] == "kB" {
				n, _ := strconv.Atoi(f[1])
				kb[strings.TrimSuffix(f[0], ":")] = n
			}
		}
		t.Logf("monitor %d (%s): Pss %d kB, Rss %d kB, Private_Dirty %d kB, Pss_Anon %d kB",
			c.State.MonitorPid, exe, kb["Pss"], kb["Rss"], kb["Private_Dirty"], kb["Pss_Anon"])
	}
}

func TestOutputCopierKeepsOrderBetweenStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), logFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, stdout, stderr, err := newOutputCopier(&logWriter{f: f})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	// The write ends block, as a program expects of its stdout.
	for _, w := range []*os.File{stdout, stderr} {
		fl, err := unixFcntlFlags(w)
		if err != nil || fl&syscall.O_NONBLOCK != 0 {
			t.Errorf("%s: flags %#x, %v", w.Name(), fl, err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- c.run() }()
	lines := func() string {
		var got []string
		lr, err := readLogFile(path, LogOptions{Tail: -1}, func(e LogEntry) error {
			got = append(got, e.Stream+" "+string(e.Text))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		lr.f.Close()
		return strings.Join(got, "|")
	}
	// Each round is written before the copier reads it: the order is the
	// order in which the pipes became readable.
	stdout.WriteString("a\n")
	stderr.WriteString("b\n")
	waitFor(t, "round 1", func() bool { return strings.Count(lines(), "|") == 1 })
	stderr.WriteString("c\n")
	stdout.WriteString("d\npartial")
	waitFor(t, "round 2", func() bool { return strings.Count(lines(), "|") == 3 })
	stdout.Close()
	stderr.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := lines(), "stdout a|stderr b|stderr c|stdout d|stdout partial"; got != want {
		t.Errorf("log %q, want %q", got, want)
	}
}

func TestOutputCopierAbort(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), logFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, stdout, stderr, err := newOutputCopier(&logWriter{f: f})
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	defer stderr.Close()
	done := make(chan error, 1)
	go func() { done <- c.run() }()
	// A writer that never closes its end (outside the container's cgroup).
	c.abort()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("abort did not end the copier")
	}
	c.close()
}

func unixFcntlFlags(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var fl int
	var ferr error
	if err := rc.Control(func(fd uintptr) { fl, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil {
		return 0, err
	}
	return fl, ferr
}

func TestCatchesSignal(t *testing.T) {
	imagetest.NeedBusybox(t)
	if !catchesSignal(0, syscall.SIGTERM) {
		t.Error("an unknown PID must take the graceful path")
	}
	plain := exec.Command(imagetest.BusyboxPath, "sleep", "30")
	trapping := exec.Command(imagetest.BusyboxPath, "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done")
	for _, cmd := range []*exec.Cmd{plain, trapping} {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	deadline := time.Now().Add(10 * time.Second)
	for !catchesSignal(trapping.Process.Pid, syscall.SIGTERM) {
		if time.Now().After(deadline) {
			t.Fatal("a shell that traps TERM never shows a handler for it")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if catchesSignal(plain.Process.Pid, syscall.SIGTERM) {
		t.Error("sleep has no handler for SIGTERM")
	}
}
