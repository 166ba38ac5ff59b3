package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// containerCgroup is the cgroup of one container, "berth/NAME" in every
// hierarchy: cgroup v2 when the host is unified, else every v1 hierarchy
// actually mounted. Hybrid hosts (v1 controllers plus a cgroup2 mount under
// /sys/fs/cgroup/unified) are driven as v1, as docker and runc do.
type containerCgroup struct {
	name string
	v1   cgroup1.Cgroup
	v2   *cgroup2.Manager
}

func cgroupGroup(name string) string { return "/" + cgroupParent + "/" + name }

// createCgroup creates the container's cgroup (no limits yet) or takes over
// an existing one of that name.
func createCgroup(name string) (cg *containerCgroup, err error) {
	for range 3 {
		if cg, err = createCgroupOnce(name); err == nil || !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	return cg, err
}

func createCgroupOnce(name string) (*containerCgroup, error) {
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.NewManager(cgroupRoot, cgroupGroup(name), &cgroup2.Resources{})
		if err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", cgroupGroup(name), err)
		}
		return &containerCgroup{name: name, v2: m}, nil
	}
	cg, err := cgroup1.New(cgroup1.StaticPath(cgroupGroup(name)), &specs.LinuxResources{},
		cgroup1.WithHierarchy(mountedV1))
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", cgroupGroup(name), err)
	}
	return &containerCgroup{name: name, v1: cg}, nil
}

// loadCgroup opens the container's cgroup; nil without error when it does
// not exist.
func loadCgroup(name string) (*containerCgroup, error) {
	if cgroups.Mode() == cgroups.Unified {
		if _, err := os.Stat(filepath.Join(cgroupRoot, cgroupGroup(name))); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		m, err := cgroup2.Load(cgroupGroup(name), cgroup2.WithMountpoint(cgroupRoot))
		if err != nil {
			return nil, fmt.Errorf("load cgroup %s: %w", cgroupGroup(name), err)
		}
		return &containerCgroup{name: name, v2: m}, nil
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(cgroupGroup(name)), cgroup1.WithHierarchy(mountedV1))
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load cgroup %s: %w", cgroupGroup(name), err)
	}
	return &containerCgroup{name: name, v1: cg}, nil
}

// mountedV1 is the cgroup v1 hierarchy as it is mounted on this host.
// cgroup1.Default lists every controller it knows and creates the
// directories of those that are not mounted (on the tmpfs of
// /sys/fs/cgroup), or fails on a hugetlb that only cgroup2 holds: keep only
// the subsystems whose folder is a cgroup v1 mount.
func mountedV1() ([]cgroup1.Subsystem, error) {
	root := cgroupRoot
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
	if h, err := cgroup1.NewHugetlb(root); err == nil {
		all = append(all, h)
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

// add moves process pid into the cgroup.
func (c *containerCgroup) add(pid int) error {
	var err error
	if c.v2 != nil {
		err = c.v2.AddProc(uint64(pid))
	} else {
		err = c.v1.AddProc(uint64(pid))
	}
	if err != nil {
		return fmt.Errorf("add pid %d to cgroup %s: %w", pid, cgroupGroup(c.name), err)
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

// signal sends sig to every process of the cgroup. The cgroup is frozen
// meanwhile, so that no process forks a child the loop would miss.
func (c *containerCgroup) signal(sig syscall.Signal) error {
	if c.v2 != nil && sig == syscall.SIGKILL {
		// cgroup.kill (Linux 5.14) kills the whole tree atomically; the
		// library falls back to freeze and kill on older kernels.
		return c.v2.Kill()
	}
	frozen := false
	if c.v2 != nil {
		frozen = c.v2.Freeze() == nil
	} else if c.hasV1(cgroup1.Freezer) {
		frozen = c.v1.Freeze() == nil
	}
	pids, err := c.pids()
	for _, pid := range pids {
		if kerr := unix.Kill(pid, sig); kerr != nil && kerr != unix.ESRCH && err == nil {
			err = fmt.Errorf("kill %d: %w", pid, kerr)
		}
	}
	if frozen {
		// A frozen task only acts on its signal once thawed.
		var terr error
		if c.v2 != nil {
			terr = c.v2.Thaw()
		} else {
			terr = c.v1.Thaw()
		}
		if err == nil {
			err = terr
		}
	}
	if err != nil {
		return fmt.Errorf("signal cgroup %s: %w", cgroupGroup(c.name), err)
	}
	return nil
}

// killAll kills every process of the cgroup and waits until it is empty.
func (c *containerCgroup) killAll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		pids, err := c.pids()
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cgroup %s: list processes: %w", cgroupGroup(c.name), err)
		}
		if len(pids) == 0 {
			return nil
		}
		if err := c.signal(syscall.SIGKILL); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup %s: processes %v survive SIGKILL: %w", cgroupGroup(c.name), pids, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// delete removes the cgroup; it must be empty. Already gone is success.
func (c *containerCgroup) delete() error {
	var err error
	if c.v2 != nil {
		err = c.v2.Delete()
	} else {
		err = c.v1.Delete()
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return fmt.Errorf("delete cgroup %s: %w", cgroupGroup(c.name), err)
	}
	removeCgroupParent(c.name)
	return nil
}

// removeCgroupParent removes the shared "berth" cgroup once its last
// container is gone, so that nothing of berth stays in the hierarchy. rmdir
// of a cgroup with children fails (EBUSY), which is the answer "not yet";
// createCgroup retries when a concurrent removal takes the parent away.
func removeCgroupParent(name string) {
	for _, p := range cgroupPaths(name) {
		_ = unix.Rmdir(filepath.Dir(p))
	}
}

// oomKilled reports whether the kernel's OOM killer killed a process of the
// cgroup: the oom_kill counter of memory.events (v2) or memory.oom_control
// (v1, Linux 4.13).
func (c *containerCgroup) oomKilled() bool {
	var path string
	if c.v2 != nil {
		path = filepath.Join(cgroupRoot, cgroupGroup(c.name), "memory.events")
	} else {
		path = filepath.Join(cgroupRoot, string(cgroup1.Memory), cgroupGroup(c.name), "memory.oom_control")
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

// cgroupPaths lists the directories the container's cgroup would have, for
// checks that nothing is left behind.
func cgroupPaths(name string) []string {
	if cgroups.Mode() == cgroups.Unified {
		return []string{filepath.Join(cgroupRoot, cgroupGroup(name))}
	}
	subs, err := mountedV1()
	if err != nil {
		return nil
	}
	var paths []string
	for _, s := range subs {
		paths = append(paths, filepath.Join(cgroupRoot, string(s.Name()), cgroupGroup(name)))
	}
	return paths
}
