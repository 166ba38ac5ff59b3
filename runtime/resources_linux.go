package runtime

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The limits of a container, as docker sets them: mem_limit and
// mem_reservation are memory.limit_in_bytes and memory.soft_limit_in_bytes
// (v1) or memory.max and memory.low (v2); cpus is a CFS quota over a
// 100 ms period (cpu.cfs_quota_us and cpu.cfs_period_us, or cpu.max);
// cpu_shares is cpu.shares, or cpu.weight converted as runc converts it;
// pids_limit is pids.max. Where the kernel accounts swap, a memory limit
// also allows as much swap again, docker's default for --memory alone:
// memory.memsw.limit_in_bytes = 2 x limit on v1, memory.swap.max = limit
// on v2 (which counts swap apart from memory).

const (
	// cfsPeriod is the CFS period, in microseconds, of a cpus quota:
	// docker's 100 ms.
	cfsPeriod = 100000
	// minMemory is docker's smallest memory limit and reservation: below
	// it a container is OOM-killed before its process has started.
	minMemory = 6 << 20
)

// validate refuses the limits the kernel would refuse or docker refuses,
// naming the compose field.
func (r Resources) validate() error {
	ncpu := goruntime.NumCPU()
	switch {
	case r.MemoryLimit < 0:
		return fmt.Errorf("mem_limit: %d bytes is negative", r.MemoryLimit)
	case r.MemoryLimit > 0 && r.MemoryLimit < minMemory:
		return fmt.Errorf("mem_limit: %d bytes is below the minimum of 6MB", r.MemoryLimit)
	case r.MemoryReservation < 0:
		return fmt.Errorf("mem_reservation: %d bytes is negative", r.MemoryReservation)
	case r.MemoryReservation > 0 && r.MemoryReservation < minMemory:
		return fmt.Errorf("mem_reservation: %d bytes is below the minimum of 6MB", r.MemoryReservation)
	case r.MemoryLimit > 0 && r.MemoryReservation > r.MemoryLimit:
		return fmt.Errorf("mem_reservation: %d bytes is above mem_limit (%d bytes)", r.MemoryReservation, r.MemoryLimit)
	case r.NanoCPUs < 0, r.NanoCPUs > 0 && r.NanoCPUs < 1e7, r.NanoCPUs > int64(ncpu)*1e9:
		// 0.01 CPU is a quota of 1 ms, the kernel's smallest.
		return fmt.Errorf("cpus: %s is out of range: from 0.01 to %d.00, as this host has %d CPUs",
			strconv.FormatFloat(float64(r.NanoCPUs)/1e9, 'f', -1, 64), ncpu, ncpu)
	}
	return nil
}

// cgroupLimit is one limit of Resources: the controller and the file, in
// each cgroup version, that enforce it.
type cgroupLimit struct {
	field      string // as compose names it
	controller string // both the v1 hierarchy and the v2 controller
	v1, v2     string
}

// limits lists the limits r sets.
func (r Resources) limits() []cgroupLimit {
	var ls []cgroupLimit
	if r.MemoryLimit > 0 {
		ls = append(ls, cgroupLimit{"mem_limit", "memory", "memory.limit_in_bytes", "memory.max"})
	}
	if r.MemoryReservation > 0 {
		ls = append(ls, cgroupLimit{"mem_reservation", "memory", "memory.soft_limit_in_bytes", "memory.low"})
	}
	if r.NanoCPUs > 0 {
		ls = append(ls, cgroupLimit{"cpus", "cpu", "cpu.cfs_quota_us", "cpu.max"})
	}
	if r.CPUShares > 0 {
		ls = append(ls, cgroupLimit{"cpu_shares", "cpu", "cpu.shares", "cpu.weight"})
	}
	if r.PidsLimit > 0 {
		ls = append(ls, cgroupLimit{"pids_limit", "pids", "pids.max", "pids.max"})
	}
	return ls
}

// v1Resources maps r onto the OCI resources that cgroup1 writes. swap:
// the kernel accounts swap (memory.memsw.* exists).
func v1Resources(r Resources, swap bool) *specs.LinuxResources {
	var lr specs.LinuxResources
	if r.MemoryLimit > 0 || r.MemoryReservation > 0 {
		lr.Memory = &specs.LinuxMemory{}
		if r.MemoryLimit > 0 {
			lr.Memory.Limit = &r.MemoryLimit
			if swap {
				memsw := int64(-1) // unlimited: twice the limit overflows
				if r.MemoryLimit <= math.MaxInt64/2 {
					memsw = 2 * r.MemoryLimit
				}
				lr.Memory.Swap = &memsw
			}
		}
		if r.MemoryReservation > 0 {
			lr.Memory.Reservation = &r.MemoryReservation
		}
	}
	if r.NanoCPUs > 0 || r.CPUShares > 0 {
		lr.CPU = &specs.LinuxCPU{}
		if r.NanoCPUs > 0 {
			period, quota := uint64(cfsPeriod), r.NanoCPUs*cfsPeriod/1e9
			lr.CPU.Period, lr.CPU.Quota = &period, &quota
		}
		if r.CPUShares > 0 {
			lr.CPU.Shares = &r.CPUShares
		}
	}
	if r.PidsLimit > 0 {
		lr.Pids = &specs.LinuxPids{Limit: &r.PidsLimit}
	}
	return &lr
}

// v2Resources maps r onto cgroup v2, through the conversion runc and
// containerd make of the OCI resources: cpu.max "QUOTA PERIOD",
// memory.swap.max the memsw limit less the memory limit, and cpu.weight
// from cpu.shares by the curve of runc 1.3.2 and crun 1.23, which keeps
// the defaults (1024 shares are weight 100) and both ends (2 is 1, 262144
// is 10000).
func v2Resources(r Resources, swap bool) *cgroup2.Resources {
	return cgroup2.ToResources(v1Resources(r, swap))
}

// setResources checks that the host can enforce every limit of r, then
// sets them: a limit is never dropped in silence.
func (c *containerCgroup) setResources(r Resources) error {
	if r == (Resources{}) {
		return nil
	}
	for _, l := range r.limits() {
		if err := c.canLimit(l); err != nil {
			return err
		}
	}
	if c.v2 != nil {
		_, err := os.Stat(filepath.Join(c.host.root, c.host.group(c.name), "memory.swap.max"))
		if err := c.v2.Update(v2Resources(r, err == nil)); err != nil {
			return fmt.Errorf("set limits: %w", err)
		}
		return nil
	}
	memDir := filepath.Join(c.host.root, string(cgroup1.Memory), c.host.group(c.name))
	swap := false
	if c.hasV1(cgroup1.Memory) {
		_, err := os.Stat(filepath.Join(memDir, "memory.memsw.limit_in_bytes"))
		swap = err == nil
	}
	if swap && r.MemoryLimit > 0 {
		// The kernel refuses a memory.limit_in_bytes above
		// memory.memsw.limit_in_bytes, which a cgroup taken over may
		// hold, and cgroup1 v3.1.3 misorders the two writes (it swaps
		// the limit with the soft limit): lift memsw first, so that
		// any order of the writes below holds.
		if err := writeCgroupFile(memDir, "memory.memsw.limit_in_bytes", "-1"); err != nil {
			return fmt.Errorf("set limits: %w", err)
		}
	}
	if err := c.v1.Update(v1Resources(r, swap)); err != nil {
		return fmt.Errorf("set limits: %w", err)
	}
	return nil
}

// canLimit tells whether the container's cgroup has the controller and the
// file that enforce l.
func (c *containerCgroup) canLimit(l cgroupLimit) error {
	var file string
	if c.v2 != nil {
		dir := filepath.Join(c.host.root, c.host.group(c.name))
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		if err != nil {
			return fmt.Errorf("%s: read controllers: %w", l.field, err)
		}
		if !slices.Contains(strings.Fields(string(data)), l.controller) {
			return fmt.Errorf("%s: the %s controller is not available on this host", l.field, l.controller)
		}
		file = filepath.Join(dir, l.v2)
	} else {
		if !c.hasV1(cgroup1.Name(l.controller)) {
			return fmt.Errorf("%s: the %s controller is not available on this host", l.field, l.controller)
		}
		file = filepath.Join(c.host.root, l.controller, c.host.group(c.name), l.v1)
	}
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		// cpu.cfs_quota_us needs CONFIG_CFS_BANDWIDTH.
		return fmt.Errorf("%s: the %s controller of this kernel has no %s", l.field, l.controller, filepath.Base(file))
	} else if err != nil {
		return fmt.Errorf("%s: %w", l.field, err)
	}
	return nil
}
