package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/moby/sys/userns"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroupRoot is where the host mounts its cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupParent is the folder, in every hierarchy, of the containers' cgroups.
const cgroupParent = "berth"

// cgroupHost is the host's cgroup layout: cgroup v2 when the host is
// unified, else every v1 hierarchy actually mounted. Hybrid hosts (v1
// controllers plus a cgroup2 mount under /sys/fs/cgroup/unified) are driven
// as v1, as docker and runc do: the controllers live in v1 there.
type cgroupHost struct {
	// unified: root is a cgroup2 mount; else root holds one folder per
	// v1 hierarchy.
	unified bool
	root    string
	// parent is the folder, in every hierarchy, of the containers'
	// cgroups. Tests use one of their own, so that a berth running on the
	// same host neither holds it nor removes it under them.
	parent string
}

// detectCgroupHost reads the host's layout. cgroups.Mode statfs-es
// /sys/fs/cgroup once per process, so calling this again costs nothing
// and always gives the same answer.
func detectCgroupHost() cgroupHost {
	return cgroupHost{unified: cgroups.Mode() == cgroups.Unified, root: cgroupRoot, parent: cgroupParent}
}

func (h cgroupHost) group(name string) string { return "/" + h.parent + "/" + name }

// containerCgroup is the cgroup of one container, "PARENT/NAME" in every
// hierarchy of its host.
type containerCgroup struct {
	name string
	host cgroupHost
	v1   cgroup1.Cgroup
	v2   *cgroup2.Manager
}

// createCgroup creates the container's cgroup with the limits res and the
// device rules of sec (docker's allowlist, its devices and
// device_cgroup_rules), or takes over an existing one of that name and sets
// them there.
func createCgroup(name string, res Resources, sec Security) (*containerCgroup, error) {
	devices, err := deviceRules(sec)
	if err != nil {
		return nil, err
	}
	return detectCgroupHost().create(name, res, devices...)
}

// loadCgroup opens the container's cgroup; nil without error when it does
// not exist.
func loadCgroup(name string) (*containerCgroup, error) {
	return detectCgroupHost().load(name)
}

// cgroupPaths lists the directories the container's cgroup would have, for
// checks that nothing is left behind.
func cgroupPaths(name string) []string {
	return detectCgroupHost().paths(name)
}

// create makes the cgroup, with the device rules devices in place of any it
// had; with none, device access stays as the kernel or a taken-over cgroup
// has it (tests only: createCgroup always has rules).
func (h cgroupHost) create(name string, res Resources, devices ...specs.LinuxDeviceCgroup) (cg *containerCgroup, err error) {
	if err := res.validate(); err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", h.group(name), err)
	}
	unlock := lockCgroupParent()
	defer unlock()
	for range 3 {
		if cg, err = h.createOnce(name, res, devices); err == nil || !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	return cg, err
}

// cgroupParentLock serialises, host-wide, the creation of a container's
// cgroup with the removal of the shared parent: a parent removed between
// the creation of its directories would come back without the cpus and
// mems a v1 cpuset needs (ENOSPC when the process joins).
const cgroupParentLock = "/run/berth-cgroup.lock"

// lockCgroupParent takes the lock, or does nothing when the lock file
// cannot be had (a create then retries as before).
func lockCgroupParent() (unlock func()) {
	f, err := os.OpenFile(cgroupParentLock, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return func() {}
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return func() {}
	}
	return func() { f.Close() }
}

func (h cgroupHost) createOnce(name string, res Resources, devices []specs.LinuxDeviceCgroup) (*containerCgroup, error) {
	// An empty cgroup of that name, left by an earlier run, goes first:
	// none of its limits may outlive the spec that set them. One that
	// still has processes (EBUSY) is taken over.
	for _, p := range h.paths(name) {
		_ = unix.Rmdir(p)
	}
	var cg *containerCgroup
	if h.unified {
		m, err := cgroup2.NewManager(h.root, h.group(name), &cgroup2.Resources{})
		if err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", h.group(name), err)
		}
		// Only now: the container's cgroup keeps the parent from being
		// removed by a concurrent delete.
		if err := h.enableControllers(); err != nil {
			h.undoCreate(name)
			return nil, fmt.Errorf("create cgroup %s: %w", h.group(name), err)
		}
		cg = &containerCgroup{name: name, host: h, v2: m}
	} else {
		v1, err := cgroup1.New(cgroup1.StaticPath(h.group(name)), &specs.LinuxResources{},
			cgroup1.WithHierarchy(h.mountedV1))
		if err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", h.group(name), err)
		}
		cg = &containerCgroup{name: name, host: h, v1: v1}
	}
	if err := cg.setResources(res); err != nil {
		h.undoCreate(name)
		return nil, fmt.Errorf("create cgroup %s: %w", h.group(name), err)
	}
	if len(devices) > 0 {
		if err := cg.setDevices(devices); err != nil {
			h.undoCreate(name)
			return nil, fmt.Errorf("create cgroup %s: %w", h.group(name), err)
		}
	}
	return cg, nil
}

// undoCreate removes what a failed create made. A cgroup taken over with
// processes in it stays (EBUSY).
func (h cgroupHost) undoCreate(name string) {
	for _, p := range h.paths(name) {
		_ = unix.Rmdir(p)
	}
	h.removeParentLocked(name)
}

// enableControllers gives the containers' cgroups every controller their
// parent has, as v1 puts them in every hierarchy: without the memory
// controller a v2 cgroup has no memory.events, and oomKilled never sees an
// OOM kill. The parent's cgroup.controllers is what the host already
// delegates, so nothing above the parent changes. As in runc, a controller
// the kernel refuses (cpu while a realtime task runs) is left out rather
// than failing the container.
func (h cgroupHost) enableControllers() error {
	dir := filepath.Join(h.root, h.parent)
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("read controllers: %w", err)
	}
	ctrls := strings.Fields(string(data))
	if len(ctrls) == 0 {
		return nil
	}
	if writeCgroupFile(dir, "cgroup.subtree_control", "+"+strings.Join(ctrls, " +")) == nil {
		return nil
	}
	for _, c := range ctrls {
		_ = writeCgroupFile(dir, "cgroup.subtree_control", "+"+c)
	}
	return nil
}

// writeCgroupFile writes value to an existing file of a cgroup. Without
// O_CREAT: a file the kernel lacks is ENOENT (a feature test), where
// os.WriteFile gets EACCES from cgroupfs.
func writeCgroupFile(dir, file, value string) error {
	f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (h cgroupHost) load(name string) (*containerCgroup, error) {
	if h.unified {
		if _, err := os.Stat(filepath.Join(h.root, h.group(name))); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("load cgroup %s: %w", h.group(name), err)
		}
		m, err := cgroup2.Load(h.group(name), cgroup2.WithMountpoint(h.root))
		if err != nil {
			return nil, fmt.Errorf("load cgroup %s: %w", h.group(name), err)
		}
		return &containerCgroup{name: name, host: h, v2: m}, nil
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(h.group(name)), cgroup1.WithHierarchy(h.mountedV1))
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load cgroup %s: %w", h.group(name), err)
	}
	return &containerCgroup{name: name, host: h, v1: cg}, nil
}

// mountedV1 is the cgroup v1 hierarchy as it is mounted on this host.
// cgroup1.Default lists every controller it knows and creates the
// directories of those that are not mounted (on the tmpfs of
// /sys/fs/cgroup), or fails on a hugetlb that only cgroup2 holds: keep only
// the subsystems whose folder is a cgroup v1 mount.
func (h cgroupHost) mountedV1() ([]cgroup1.Subsystem, error) {
	root := h.root
	all := []cgroup1.Subsystem{
		cgroup1.NewNamed(root, "systemd"),
		cgroup1.NewFreezer(root),
		cgroup1.NewPids(root),
		cgroup1.NewNetCls(root),
		cgroup1.NewNetPrio(root),
		cgroup1.NewPerfEvent(root),
		cgroup1.NewCpuset(root),
		cgroup1.NewCpu(root),
		cgroup1.NewCpuacct(root),
		cgroup1.NewMemory(root),
		cgroup1.NewBlkio(root),
		cgroup1.NewRdma(root),
	}
	// The devices controller refuses writes from a user namespace.
	if !userns.RunningInUserNS() {
		all = append(all, cgroup1.NewDevices(root))
	}
	if hs, err := cgroup1.NewHugetlb(root); err == nil {
		all = append(all, hs)
	}
	var mounted []cgroup1.Subsystem
	for _, s := range all {
		var st unix.Statfs_t
		if err := unix.Statfs(filepath.Join(root, string(s.Name())), &st); err != nil {
			continue
		}
		if st.Type == unix.CGROUP_SUPER_MAGIC {
			mounted = append(mounted, s)
		}
	}
	if len(mounted) == 0 {
		return nil, fmt.Errorf("no cgroup v1 hierarchy is mounted under %s", root)
	}
	return mounted, nil
}

// paths lists the directories the container's cgroup has, or would have,
// in every hierarchy.
func (h cgroupHost) paths(name string) []string {
	if h.unified {
		return []string{filepath.Join(h.root, h.group(name))}
	}
	subs, err := h.mountedV1()
	if err != nil {
		return nil
	}
	var paths []string
	for _, s := range subs {
		paths = append(paths, filepath.Join(h.root, string(s.Name()), h.group(name)))
	}
	return paths
}

// add moves process pid into the cgroup.
func (c *containerCgroup) add(pid int) error {
	var err error
	if c.v2 != nil {
		err = c.v2.AddProc(uint64(pid))
	} else {
		err = c.v1.AddProc(uint64(pid))
	}
	if err != nil {
		return fmt.Errorf("add pid %d to cgroup %s: %w", pid, c.host.group(c.name), err)
	}
	return nil
}

// pids lists the processes in the cgroup.
func (c *containerCgroup) pids() ([]int, error) {
	var pids []int
	if c.v2 != nil {
		ps, err := c.v2.Procs(true)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			pids = append(pids, int(p))
		}
		return pids, nil
	}
	// Every v1 hierarchy holds the same processes; ask one that every
	// host mounts.
	sub := cgroup1.Pids
	if !c.hasV1(sub) {
		sub = c.v1.Subsystems()[0].Name()
	}
	ps, err := c.v1.Processes(sub, true)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		pids = append(pids, p.Pid)
	}
	return pids, nil
}

func (c *containerCgroup) hasV1(name cgroup1.Name) bool {
	for _, s := range c.v1.Subsystems() {
		if s.Name() == name {
			return true
		}
	}
	return false
}

// signal sends sig to every process of the cgroup.
func (c *containerCgroup) signal(sig syscall.Signal) error {
	if c.v2 != nil && sig == syscall.SIGKILL {
		// cgroup.kill (Linux 5.14) kills the whole tree atomically.
		// Not cgroup2.Manager.Kill: its fallback waits for the killed
		// processes, which reaps the caller's own children (the
		// monitor's init) and takes their exit status away.
		err := writeCgroupFile(filepath.Join(c.host.root, c.host.group(c.name)), "cgroup.kill", "1")
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("signal cgroup %s: write cgroup.kill: %w", c.host.group(c.name), err)
		}
		// An older kernel, or the cgroup is gone: signalEach tells.
	}
	return c.signalEach(sig)
}

// signalEach sends sig to the processes of the cgroup one by one. The
// cgroup is frozen meanwhile, so that no process forks a child the loop
// would miss.
func (c *containerCgroup) signalEach(sig syscall.Signal) error {
	frozen := c.freeze()
	pids, err := c.pids()
	for _, pid := range pids {
		if kerr := unix.Kill(pid, sig); kerr != nil && kerr != unix.ESRCH && err == nil {
			err = fmt.Errorf("kill %d: %w", pid, kerr)
		}
	}
	if frozen {
		// A frozen task only acts on its signal once thawed.
		if terr := c.thaw(); err == nil {
			err = terr
		}
	}
	if err != nil {
		return fmt.Errorf("signal cgroup %s: %w", c.host.group(c.name), err)
	}
	return nil
}

// freezeTimeout bounds the wait for a v2 freeze: a task in uninterruptible
// sleep freezes only when it wakes, and a signal late is better than none.
const freezeTimeout = time.Second

// freeze stops the cgroup's processes and reports whether it must be
// thawed. The v1 freezer waits until every task is frozen; v2's
// cgroup.freeze only asks, and cgroup.events says "frozen 1" once the last
// task has stopped: until then a task can still fork.
func (c *containerCgroup) freeze() bool {
	if c.v1 != nil {
		return c.hasV1(cgroup1.Freezer) && c.v1.Freeze() == nil
	}
	if c.v2.Freeze() != nil {
		return false
	}
	events := filepath.Join(c.host.root, c.host.group(c.name), "cgroup.events")
	for deadline := time.Now().Add(freezeTimeout); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		data, err := os.ReadFile(events)
		if err != nil || hasLine(data, "frozen 1") {
			break
		}
	}
	return true
}

func (c *containerCgroup) thaw() error {
	if c.v2 != nil {
		return c.v2.Thaw()
	}
	return c.v1.Thaw()
}

// hasLine reports whether data, the text of a cgroup file, has the line.
func hasLine(data []byte, line string) bool {
	for l := range bytes.Lines(data) {
		if string(bytes.TrimSpace(l)) == line {
			return true
		}
	}
	return false
}

// killAll kills every process of the cgroup and waits until it is empty.
// A cgroup that is gone has nothing left to kill.
func (c *containerCgroup) killAll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		pids, err := c.pids()
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cgroup %s: list processes: %w", c.host.group(c.name), err)
		}
		if len(pids) == 0 {
			return nil
		}
		if err := c.signal(syscall.SIGKILL); errors.Is(err, os.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup %s: processes %v survive SIGKILL: %w", c.host.group(c.name), pids, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// delete removes the cgroup; it must be empty. Already gone is success.
func (c *containerCgroup) delete() error {
	var err error
	// ENODEV: another process (the container's monitor, a down) removed
	// one hierarchy's folder while containerd's delete read a file of it,
	// and the delete stopped there: again, that folder is simply gone.
	for range 3 {
		if c.v2 != nil {
			err = c.v2.Delete()
		} else {
			err = c.v1.Delete()
		}
		if !errors.Is(err, unix.ENODEV) {
			break
		}
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, cgroup1.ErrCgroupDeleted) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete cgroup %s: %w", c.host.group(c.name), err)
	}
	c.host.removeParent(c.name)
	return nil
}

// removeParent removes the shared parent cgroup once its last container is
// gone, so that nothing of berth stays in the hierarchy. rmdir of a cgroup
// with children fails (EBUSY), which is the answer "not yet"; create
// retries when a concurrent removal takes the parent away.
func (h cgroupHost) removeParent(name string) {
	unlock := lockCgroupParent()
	defer unlock()
	h.removeParentLocked(name)
}

// removeParentLocked is removeParent with the lock held.
func (h cgroupHost) removeParentLocked(name string) {
	for _, p := range h.paths(name) {
		_ = unix.Rmdir(filepath.Dir(p))
	}
}

// oomKilled reports whether the kernel's OOM killer killed a process of the
// cgroup: the oom_kill counter of memory.events (v2) or memory.oom_control
// (v1, Linux 4.13).
func (c *containerCgroup) oomKilled() bool {
	var path string
	if c.host.unified {
		path = filepath.Join(c.host.root, c.host.group(c.name), "memory.events")
	} else {
		path = filepath.Join(c.host.root, string(cgroup1.Memory), c.host.group(c.name), "memory.oom_control")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("oom_kill ")); ok {
			n, _ := strconv.Atoi(string(v))
			return n > 0
		}
	}
	return false
}
