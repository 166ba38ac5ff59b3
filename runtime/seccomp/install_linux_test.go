package seccomp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The real-kernel tests run the filter in a child: the test binary again,
// told by childEnv which part to play. A filter never comes off, so the
// test process itself stays unfiltered.
const (
	childEnv = "BERTH_SECCOMP_TEST_CHILD"
	dirEnv   = "BERTH_SECCOMP_TEST_DIR"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(child(role))
	}
	os.Exit(m.Run())
}

// child installs a filter on its locked thread as the container's init
// does, then prints what some syscalls return, one "name=result" a line.
func child(role string) int {
	if role == "cold" {
		runtime.LockOSThread()
		cpu, wall := threadCPU(), time.Now()
		if _, err := Filter(nil, dockerCaps); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(int64(threadCPU()-cpu), int64(time.Since(wall)))
		return 0
	}

	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "prctl PR_SET_NO_NEW_PRIVS:", err)
		return 1
	}
	var profile []byte
	if role == "custom" {
		profile = []byte(denyMkdir)
	}
	p, err := Filter(profile, dockerCaps)
	if err == nil {
		err = Install(p)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	dir := os.Getenv(dirEnv)
	report := func(name string, err error) {
		result := "ok"
		var errno unix.Errno
		if errors.As(err, &errno) {
			result = unix.ErrnoName(errno)
		} else if err != nil {
			result = err.Error()
		}
		fmt.Printf("%s=%s\n", name, result)
	}
	report("mkdir", unix.Mkdir(filepath.Join(dir, "a"), 0o755))
	report("mkdirat", unix.Mkdirat(unix.AT_FDCWD, filepath.Join(dir, "b"), 0o755))
	var st unix.Stat_t
	report("stat", unix.Stat(dir, &st))
	report("unshare", unix.Unshare(unix.CLONE_NEWUSER))
	_, _, errno := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
	report("clone3", errnoErr(errno))
	for _, af := range []struct {
		name   string
		family int
	}{{"socket_inet", unix.AF_INET}, {"socket_vsock", unix.AF_VSOCK}} {
		fd, err := unix.Socket(af.family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		report(af.name, err)
	}
	return 0
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func runChild(t *testing.T, role string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, dirEnv+"="+dir)
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("child %s: %v: %s", role, err, exit.Stderr)
		}
		t.Fatalf("child %s: %v", role, err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	return got
}

func checkResults(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}

// A custom profile in docker's format, in the kernel: mkdir fails with
// EPERM, the rest works.
func TestInstallCustomProfile(t *testing.T) {
	checkResults(t, runChild(t, "custom"), map[string]string{
		"mkdir":        "EPERM",
		"mkdirat":      "EPERM",
		"stat":         "ok",
		"socket_inet":  "ok",
		"socket_vsock": vsockUnfiltered(),
		"clone3":       "EINVAL", // allowed: the kernel refuses the null argument
	})
}

// vsockUnfiltered is what socket(AF_VSOCK) gives without a filter: the
// host's vsock support decides.
func vsockUnfiltered() string {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return unix.ErrnoName(err.(unix.Errno))
	}
	unix.Close(fd)
	return "ok"
}

// Docker's default profile in the kernel.
func TestInstallDefaultProfile(t *testing.T) {
	checkResults(t, runChild(t, "default"), map[string]string{
		"mkdir":        "ok",
		"stat":         "ok",
		"unshare":      "EPERM",
		"clone3":       "ENOSYS",
		"socket_inet":  "ok",
		"socket_vsock": "EPERM",
	})
}

// The filter is built once per container start, in a fresh init process:
// the first Filter call of a process must be cheap too. It is measured in
// CPU time of the thread, which other load on the machine leaves alone
// (mostly: page faults of the new heap count, and cost more when the
// machine is busy).
func TestColdFilter(t *testing.T) {
	var best, bestWall time.Duration
	for range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=cold")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		var cpu, wall int64
		if _, err := fmt.Sscan(string(out), &cpu, &wall); err != nil {
			t.Fatalf("child said %q: %v", out, err)
		}
		if best == 0 || time.Duration(cpu) < best {
			best, bestWall = time.Duration(cpu), time.Duration(wall)
		}
	}
	t.Logf("first Filter call of a process: %v CPU, %v wall (best of 3)", best, bestWall)
	// The budget is 2ms; the margin is for a loaded CI machine.
	if best > 10*time.Millisecond {
		t.Errorf("the first Filter call took %v of CPU, want well under 2ms", best)
	}
}

// threadCPU is the CPU time of the calling thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}
