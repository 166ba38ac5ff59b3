package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// berthCmd runs the berth under test (the test binary, put in PATH by
// testscript.Main) in dir with its own state root.
func berthCmd(t *testing.T, dir, root string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("berth", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BERTH_ROOT="+root, "NO_COLOR=1", "BERTH_IFPREFIX=bt-",
		"BERTH_ADDRESS_POOLS=10.213.120.0/22:26")
	return cmd
}

func runBerth(t *testing.T, dir, root string, args ...string) string {
	t.Helper()
	out, err := berthCmd(t, dir, root, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testProject makes a project folder with compose and a state root holding
// the busybox image as bb; `down` runs when the test ends.
func testProject(t *testing.T, compose string) (dir, root string) {
	t.Helper()
	imagetest.NeedRoot(t)
	dir, root = t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bb.tar"), imagetest.RootfsTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	runBerth(t, dir, root, "image", "import", "bb.tar", "bb")
	t.Cleanup(func() { berthCmd(t, dir, root, "down", "-t", "0").Run() })
	return dir, root
}

// TestUpKilledHalfway kills `berth up -d` with SIGKILL while it starts ten
// services, then checks that `up` converges again and `down` leaves nothing:
// no container directory, no cgroup, no monitor.
func TestUpKilledHalfway(t *testing.T) {
	var compose strings.Builder
	compose.WriteString("name: crash\nservices:\n")
	for i := range 10 {
		fmt.Fprintf(&compose, "  s%d:\n    image: bb\n    command: [sleep, \"300\"]\n", i)
	}
	dir, root := testProject(t, compose.String())

	up := berthCmd(t, dir, root, "up", "-d")
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	containers := filepath.Join(root, "containers")
	deadline := time.Now().Add(20 * time.Second)
	for {
		entries, _ := os.ReadDir(containers)
		if len(entries) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	up.Process.Signal(syscall.SIGKILL)
	up.Wait()

	runBerth(t, dir, root, "up", "-d")
	ps := runBerth(t, dir, root, "ps")
	if n := strings.Count(ps, " running"); n != 10 {
		t.Fatalf("after a second up, %d containers run, want 10:\n%s", n, ps)
	}

	// A monitor killed too: its container dies with it; down still cleans.
	var st struct{ MonitorPid int }
	data, err := os.ReadFile(filepath.Join(containers, "crash-s0-1", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil || st.MonitorPid <= 0 {
		t.Fatalf("state of crash-s0-1: %s (%v)", data, err)
	}
	if err := syscall.Kill(st.MonitorPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	links := projectLinks(t, root)
	if len(links) == 0 {
		t.Fatal("the project's default network has no bridge")
	}
	runBerth(t, dir, root, "down", "-t", "1")
	checkNetworkGone(t, root, "crash", links)
	entries, err := os.ReadDir(containers)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("down left container state: %v", entries)
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/berth/crash-*")
	more, _ := filepath.Glob("/sys/fs/cgroup/berth/crash-*")
	if left := append(cgroups, more...); len(left) > 0 {
		t.Errorf("down left cgroups: %v", left)
	}
	if pids := monitorsUnder(root); len(pids) > 0 {
		t.Errorf("down left monitors running: pids %v", pids)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), root) {
		t.Errorf("down left mounts under %s", root)
	}
}

// monitorsUnder lists the PIDs of berth monitors whose container directory
// is under root (read from /proc, never by process name).
func monitorsUnder(root string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 2 && args[1] == "monitor" && strings.HasPrefix(args[2], root) {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}
