package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// TestCgroupModes drives both cgroup layouts through the same checks, on
// the real hierarchies of this host: v1 where the host mounts it, v2 on
// the cgroup2 mount (/sys/fs/cgroup/unified on a hybrid host, where
// production code never goes). Each mode works under a parent of its own,
// so that a berth running on this host cannot hold or remove it meanwhile.
func TestCgroupModes(t *testing.T) {
	imagetest.NeedRoot(t)
	modes := []struct {
		name string
		host func(*testing.T) cgroupHost
	}{
		{"v1", v1TestHost},
		{"v2", v2TestHost},
	}
	checks := []struct {
		name string
		run  func(*testing.T, cgroupHost)
	}{
		{"load of a missing cgroup is nil", checkLoadMissing},
		{"create takes over an existing cgroup", checkCreateTwice},
		{"add and pids", checkAddPids},
		{"killAll kills the whole tree", checkKillAll},
		{"freeze waits until frozen", checkFreeze},
		{"signal thaws to deliver", checkSignalThaws},
		{"SIGKILL one by one, as without cgroup.kill", checkSignalEachKill},
		{"delete keeps the parent while in use", checkDeleteParent},
		{"limits are set, or refused naming the controller", checkLimits},
		{"limits of an empty cgroup left behind do not stay", checkStaleLimits},
		{"limits change on a cgroup taken over", checkTakeOverLimits},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			h := m.host(t)
			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) { c.run(t, h) })
			}
		})
	}
}

// v1TestHost is the host's v1 hierarchies, under a parent of the test's.
func v1TestHost(t *testing.T) cgroupHost {
	if cgroups.Mode() == cgroups.Unified || cgroups.Mode() == cgroups.Unavailable {
		t.Skipf("no cgroup v1 hierarchy under %s (pure cgroup v2 host): the v1 path cannot run here", cgroupRoot)
	}
	return testHost(t, cgroupHost{root: cgroupRoot})
}

// v2TestHost is the host's cgroup2 mount, under a parent of the test's.
func v2TestHost(t *testing.T) cgroupHost {
	for _, root := range []string{cgroupRoot, filepath.Join(cgroupRoot, "unified")} {
		var st unix.Statfs_t
		if unix.Statfs(root, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return testHost(t, cgroupHost{unified: true, root: root})
		}
	}
	t.Skipf("no cgroup2 mount at %s or %s/unified: the v2 path cannot run here", cgroupRoot, cgroupRoot)
	return cgroupHost{}
}

// testHost gives h a parent of its own and removes, when the test ends,
// whatever a failed check left under it.
func testHost(t *testing.T, h cgroupHost) cgroupHost {
	h.parent = uniqueName(t, "berth-cgroup")
	if len(h.paths("x")) == 0 {
		t.Fatalf("no cgroup hierarchy under %s", h.root)
	}
	t.Cleanup(func() {
		for _, p := range h.paths("x") {
			parent := filepath.Dir(p)
			entries, _ := os.ReadDir(parent)
			for _, e := range entries {
				if e.IsDir() {
					removeTestCgroup(t, filepath.Join(parent, e.Name()))
				}
			}
			if err := unix.Rmdir(parent); err != nil && !errors.Is(err, unix.ENOENT) {
				t.Errorf("remove test cgroup parent %s: %v", parent, err)
			}
		}
	})
	return h
}

// removeTestCgroup kills what is left in dir (the test's own processes:
// the cgroup is the test's) and removes it.
func removeTestCgroup(t *testing.T, dir string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil || len(strings.Fields(string(data))) == 0 {
			break
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("cleanup: processes %s survive SIGKILL in %s", data, dir)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
		t.Errorf("cleanup: remove cgroup %s: %v", dir, err)
	}
}

// testCgroup creates a cgroup of a fresh name on h, removed when the test
// ends.
func testCgroup(t *testing.T, h cgroupHost, base string) *containerCgroup {
	t.Helper()
	name := uniqueName(t, base)
	cg, err := h.create(name, Resources{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range h.paths(name) {
			removeTestCgroup(t, p)
		}
	})
	return cg
}

// testProc is a process of the test's, reaped by a goroutine so that
// checks see its end.
type testProc struct {
	cmd   *exec.Cmd
	done  chan struct{}
	state *os.ProcessState
}

// startProc starts /usr/bin/busybox with args, killed by PID when the test
// ends. A non-nil stdin is the process's standard input: an *os.File, so
// that Wait has no copying goroutine to wait for.
func startProc(t *testing.T, stdin *os.File, args ...string) *testProc {
	t.Helper()
	p := &testProc{cmd: exec.Command("/usr/bin/busybox", args...), done: make(chan struct{})}
	if stdin != nil {
		p.cmd.Stdin = stdin
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitSignaled waits for the process to end by sig.
func (p *testProc) waitSignaled(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("process %d still runs, want it killed by %v", p.cmd.Process.Pid, sig)
	}
	ws := p.state.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != sig {
		t.Fatalf("process %d ended with %v, want killed by %v", p.cmd.Process.Pid, p.state, sig)
	}
}

func (p *testProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// sleeper is a process that sleeps in cg.
func sleeper(t *testing.T, cg *containerCgroup) *testProc {
	t.Helper()
	p := startProc(t, nil, "sleep", "30")
	if err := cg.add(p.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkPids(t *testing.T, cg *containerCgroup, want ...int) {
	t.Helper()
	got, err := cg.pids()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("pids of %s = %v, want %v", cg.host.group(cg.name), got, want)
	}
}

func checkLoadMissing(t *testing.T, h cgroupHost) {
	load := func(when string) {
		t.Helper()
		cg, err := h.load(uniqueName(t, "missing"))
		if cg != nil || err != nil {
			t.Fatalf("load of a missing cgroup, %s = %v, %v; want nil, nil", when, cg, err)
		}
	}
	load("no parent")
	testCgroup(t, h, "other")
	load("parent in use")
}

func checkCreateTwice(t *testing.T, h cgroupHost) {
	cg := testCgroup(t, h, "twice")
	p := sleeper(t, cg)
	again, err := h.create(cg.name, Resources{})
	if err != nil {
		t.Fatalf("create of an existing cgroup: %v", err)
	}
	checkPids(t, again, p.cmd.Process.Pid)
	for _, path := range h.paths(cg.name) {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("cgroup directory: %v", err)
		}
	}
	loaded, err := h.load(cg.name)
	if err != nil || loaded == nil {
		t.Fatalf("load of an existing cgroup = %v, %v", loaded, err)
	}
	checkPids(t, loaded, p.cmd.Process.Pid)
	if h.unified {
		// The container gets every controller its parent has, or
		// oomKilled has no memory.events to read.
		dir := h.paths(cg.name)[0]
		parent, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), "cgroup.controllers"))
		own, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		if want, got := strings.Fields(string(parent)), strings.Fields(string(own)); !slices.Equal(got, want) {
			t.Errorf("controllers of %s = %v, want its parent's %v", dir, got, want)
		}
	}
}

func checkAddPids(t *testing.T, h cgroupHost) {
	cg := testCgroup(t, h, "pids")
	other := testCgroup(t, h, "other")
	checkPids(t, cg)
	p1, p2 := sleeper(t, cg), sleeper(t, cg)
	checkPids(t, cg, p1.cmd.Process.Pid, p2.cmd.Process.Pid)
	checkPids(t, other)
}

func checkKillAll(t *testing.T, h cgroupHost) {
	cg := testCgroup(t, h, "kill")
	if h.unified {
		if _, err := os.Stat(filepath.Join(h.paths(cg.name)[0], "cgroup.kill")); err != nil {
			t.Log("the kernel has no cgroup.kill (Linux < 5.14): killAll freezes and kills one by one")
		}
	}
	// The shell forks its children only once it is in the cgroup.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sh := startProc(t, r, "sh", "-c", "read x; /usr/bin/busybox sleep 30 & /usr/bin/busybox sleep 30 & wait")
	r.Close()
	if err := cg.add(sh.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the shell and its two children in the cgroup", func() bool {
		pids, err := cg.pids()
		return err == nil && len(pids) == 3
	})
	if err := cg.killAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkPids(t, cg)
	sh.waitSignaled(t, syscall.SIGKILL)
	// A cgroup another berth deleted meanwhile has nothing left to kill.
	stale, err := h.load(cg.name)
	if err != nil || stale == nil {
		t.Fatalf("load = %v, %v", stale, err)
	}
	if err := cg.delete(); err != nil {
		t.Fatal(err)
	}
	if err := stale.killAll(context.Background()); err != nil {
		t.Fatalf("killAll of a deleted cgroup: %v", err)
	}
}

func checkFreeze(t *testing.T, h cgroupHost) {
	cg := testCgroup(t, h, "freeze")
	p := sleeper(t, cg)
	var state string
	if h.unified {
		state = filepath.Join(h.paths(cg.name)[0], "cgroup.events")
	} else {
		state = filepath.Join(h.root, string(cgroup1.Freezer), h.group(cg.name), "freezer.state")
		if !cg.hasV1(cgroup1.Freezer) {
			t.Skip("no v1 freezer hierarchy on this host")
		}
	}
	if !cg.freeze() {
		t.Fatal("freeze failed")
	}
	// No polling: freeze returns once the last task has stopped.
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if frozen := hasLine(data, "frozen 1") || hasLine(data, "FROZEN"); !frozen {
		t.Errorf("after freeze, %s says %q", state, data)
	}
	if err := cg.thaw(); err != nil {
		t.Fatal(err)
	}
	if !p.running() {
		t.Fatalf("process %d ended through freeze and thaw: %v", p.cmd.Process.Pid, p.state)
	}
}

func checkSignalThaws(t *testing.T, h cgroupHost) {
	cg := testCgroup(t, h, "term")
	p := sleeper(t, cg)
	if err := cg.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitSignaled(t, syscall.SIGTERM)
}

func checkSignalEachKill(t *testing.T, h cgroupHost) {
	cg := testCgroup(t, h, "each")
	p := sleeper(t, cg)
	if err := cg.signalEach(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.waitSignaled(t, syscall.SIGKILL)
}

func checkDeleteParent(t *testing.T, h cgroupHost) {
	a, b := testCgroup(t, h, "a"), testCgroup(t, h, "b")
	var parents []string
	for _, p := range h.paths(a.name) {
		parents = append(parents, filepath.Dir(p))
	}
	if err := a.delete(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, h.paths(a.name)...)
	for _, p := range parents {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("parent removed while %s uses it: %v", b.name, err)
		}
	}
	if err := a.delete(); err != nil {
		t.Fatalf("delete of a deleted cgroup: %v", err)
	}
	if cg, err := h.load(a.name); cg != nil || err != nil {
		t.Fatalf("load of a deleted cgroup = %v, %v; want nil, nil", cg, err)
	}
	if err := b.delete(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, h.paths(b.name)...)
	checkGone(t, parents...)
}

func checkGone(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
}

// TestOOMKilled reads both layouts' counters, where the v1 file has a
// oom_kill_disable line that must not count.
func TestOOMKilled(t *testing.T) {
	tests := []struct {
		name    string
		unified bool
		data    string
		want    bool
	}{
		{"v2 killed", true, "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n", true},
		{"v2 oom without kill", true, "low 0\nhigh 0\nmax 4\noom 1\noom_kill 0\noom_group_kill 0\n", false},
		{"v2 no file", true, "", false},
		{"v1 killed", false, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", true},
		{"v1 none", false, "oom_kill_disable 1\nunder_oom 0\noom_kill 0\n", false},
		{"v1 no file", false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := cgroupHost{unified: tt.unified, root: t.TempDir(), parent: cgroupParent}
			dir, file := filepath.Join(h.root, h.group("c")), "memory.events"
			if !tt.unified {
				dir, file = filepath.Join(h.root, "memory", h.group("c")), "memory.oom_control"
			}
			if tt.data != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, file), []byte(tt.data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cg := &containerCgroup{name: "c", host: h}
			if got := cg.oomKilled(); got != tt.want {
				t.Errorf("oomKilled() = %v, want %v", got, tt.want)
			}
		})
	}
}

// limitCases are one limit each, with the value its cgroup file must hold
// in v1 and v2.
var limitCases = []struct {
	res    Resources
	v1, v2 string
}{
	{Resources{MemoryLimit: 32 << 20}, "33554432", "33554432"},
	{Resources{MemoryReservation: 16 << 20}, "16777216", "16777216"},
	{Resources{NanoCPUs: 5e8}, "50000", "50000 100000"},
	{Resources{CPUShares: 512}, "512", "59"},
	{Resources{PidsLimit: 20}, "20", "20"},
}

// hostHasController tells whether the containers' cgroups of h get the
// controller: a mounted v1 hierarchy, or one the v2 root delegates to
// h's parent.
func hostHasController(t *testing.T, h cgroupHost, controller string) bool {
	t.Helper()
	if h.unified {
		data, err := os.ReadFile(filepath.Join(h.root, "cgroup.subtree_control"))
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(strings.Fields(string(data)), controller)
	}
	subs, err := h.mountedV1()
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(subs, func(s cgroup1.Subsystem) bool { return string(s.Name()) == controller })
}

// limitFile reads the file that enforces l in the cgroup name of h.
func limitFile(t *testing.T, h cgroupHost, name string, l cgroupLimit) string {
	t.Helper()
	path := filepath.Join(h.root, l.controller, h.group(name), l.v1)
	if h.unified {
		path = filepath.Join(h.root, h.group(name), l.v2)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func checkLimits(t *testing.T, h cgroupHost) {
	for _, c := range limitCases {
		l := c.res.limits()[0]
		t.Run(l.field, func(t *testing.T) {
			name := uniqueName(t, "limit")
			if !hostHasController(t, h, l.controller) {
				// This host cannot enforce the limit: the create says
				// so, and leaves nothing.
				cg, err := h.create(name, c.res)
				want := fmt.Sprintf("create cgroup %s: %s: the %s controller is not available on this host", h.group(name), l.field, l.controller)
				if cg != nil || err == nil || err.Error() != want {
					t.Fatalf("create with %s = %v, %v; want the error %q", l.field, cg, err, want)
				}
				checkGone(t, h.paths(name)...)
				return
			}
			cg, err := h.create(name, c.res)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cg.delete() })
			want := c.v1
			if h.unified {
				want = c.v2
			}
			if got := limitFile(t, h, name, l); got != want {
				t.Errorf("%s = %q, want %q", l.v1, got, want)
			}
		})
	}
}

func checkStaleLimits(t *testing.T, h cgroupHost) {
	res := Resources{MemoryLimit: 32 << 20}
	if !hostHasController(t, h, "memory") {
		res = Resources{PidsLimit: 20}
		if !hostHasController(t, h, "pids") {
			t.Skip("neither the memory nor the pids controller on this cgroup mount")
		}
	}
	l := res.limits()[0]
	cg := testCgroup(t, h, "stale")
	unlimited := limitFile(t, h, cg.name, l)
	if err := cg.delete(); err != nil {
		t.Fatal(err)
	}
	// A monitor killed before it deleted its cgroup leaves it, limits
	// and all; the next create, without limits, gets the defaults.
	if _, err := h.create(cg.name, res); err != nil {
		t.Fatal(err)
	}
	if _, err := h.create(cg.name, Resources{}); err != nil {
		t.Fatal(err)
	}
	if got := limitFile(t, h, cg.name, l); got != unlimited {
		t.Errorf("%s after a create without limits = %q, want %q", l.v1, got, unlimited)
	}
}

func checkTakeOverLimits(t *testing.T, h cgroupHost) {
	if !hostHasController(t, h, "memory") {
		t.Skip("no memory controller on this cgroup mount")
	}
	cg := testCgroup(t, h, "takeover")
	if _, err := h.create(cg.name, Resources{MemoryLimit: 32 << 20}); err != nil {
		t.Fatal(err)
	}
	p := sleeper(t, cg)
	// Larger than the memory+swap limit in place (64 MiB): v1 takes the
	// new memsw limit first, or the kernel refuses the memory limit.
	again, err := h.create(cg.name, Resources{MemoryLimit: 128 << 20})
	if err != nil {
		t.Fatalf("create with a larger limit over a cgroup in use: %v", err)
	}
	checkPids(t, again, p.cmd.Process.Pid)
	l := cgroupLimit{controller: "memory", v1: "memory.limit_in_bytes", v2: "memory.max"}
	if got := limitFile(t, h, cg.name, l); got != "134217728" {
		t.Errorf("memory limit = %s, want 134217728", got)
	}
	// And back down below the memory+swap limit now in place (256 MiB).
	if _, err := h.create(cg.name, Resources{MemoryLimit: 16 << 20}); err != nil {
		t.Fatalf("create with a smaller limit over a cgroup in use: %v", err)
	}
	if got := limitFile(t, h, cg.name, l); got != "16777216" {
		t.Errorf("memory limit = %s, want 16777216", got)
	}
}

// TestCgroupLimitNeedsController makes hosts that lack a controller: v1
// hierarchies with one left out, and a v2 parent to which its own parent
// delegates nothing. A limit that needs the missing controller fails the
// create, naming both, and leaves nothing behind.
func TestCgroupLimitNeedsController(t *testing.T) {
	imagetest.NeedRoot(t)
	for _, c := range limitCases {
		l := c.res.limits()[0]
		t.Run("v1 without "+l.controller+"/"+l.field, func(t *testing.T) {
			real := v1TestHost(t)
			if !hostHasController(t, real, l.controller) {
				t.Skipf("no %s hierarchy on this host to leave out", l.controller)
			}
			// The other hierarchies, by symlink from a root of the test's.
			root := t.TempDir()
			subs, err := real.mountedV1()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range subs {
				if string(s.Name()) != l.controller {
					if err := os.Symlink(filepath.Join(cgroupRoot, string(s.Name())), filepath.Join(root, string(s.Name()))); err != nil {
						t.Fatal(err)
					}
				}
			}
			h := testHost(t, cgroupHost{root: root})
			checkMissingController(t, h, c.res, l)
		})
		t.Run("v2 without "+l.controller+"/"+l.field, func(t *testing.T) {
			h := v2TestHost(t)
			outer := h.parent
			h.parent = outer + "/inner"
			t.Cleanup(func() {
				for _, d := range []string{h.parent, outer} {
					if err := unix.Rmdir(filepath.Join(h.root, d)); err != nil && !errors.Is(err, unix.ENOENT) {
						t.Errorf("remove test cgroup %s: %v", d, err)
					}
				}
			})
			// outer exists with no controller enabled for its children.
			if err := os.Mkdir(filepath.Join(h.root, outer), 0o755); err != nil {
				t.Fatal(err)
			}
			checkMissingController(t, h, c.res, l)
		})
	}
}

func checkMissingController(t *testing.T, h cgroupHost, res Resources, l cgroupLimit) {
	t.Helper()
	name := uniqueName(t, "nolimit")
	cg, err := h.create(name, res)
	want := fmt.Sprintf("create cgroup %s: %s: the %s controller is not available on this host", h.group(name), l.field, l.controller)
	if cg != nil || err == nil || err.Error() != want {
		t.Fatalf("create = %v, %v; want the error %q", cg, err, want)
	}
	paths := h.paths(name)
	if len(paths) == 0 {
		t.Fatal("no cgroup paths")
	}
	checkGone(t, paths...)
	checkGone(t, filepath.Dir(paths[0]))
	// Without the limit, the same host makes the cgroup.
	cg, err = h.create(name, Resources{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cg.delete(); err != nil {
		t.Fatal(err)
	}
}
