package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestResourcesMapping is the mapping of Resources onto both cgroup
// versions: the v2 side cannot run on a host whose cgroup2 mount has no
// controllers (a hybrid host), so it is checked here as pure code.
func TestResourcesMapping(t *testing.T) {
	tests := []struct {
		name string
		res  Resources
		swap bool
		// v1
		limit, reservation, memsw, quota, pids *int64
		period, shares                         *uint64
		// v2
		max, low, swapMax *int64
		cpuMax            cgroup2.CPUMax
		weight            uint64
		pidsMax           int64
	}{
		{name: "none"},
		{
			name: "memory with swap accounting", res: Resources{MemoryLimit: 32 << 20, MemoryReservation: 16 << 20}, swap: true,
			limit: new(int64(32 << 20)), reservation: new(int64(16 << 20)), memsw: new(int64(64 << 20)),
			// memory.swap.max counts swap only: memsw less memory.
			max: new(int64(32 << 20)), low: new(int64(16 << 20)), swapMax: new(int64(32 << 20)),
		},
		{
			name: "memory without swap accounting", res: Resources{MemoryLimit: 32 << 20}, swap: false,
			limit: new(int64(32 << 20)), max: new(int64(32 << 20)),
		},
		{
			name: "reservation alone", res: Resources{MemoryReservation: 16 << 20}, swap: true,
			reservation: new(int64(16 << 20)), low: new(int64(16 << 20)),
		},
		{
			name: "half a CPU", res: Resources{NanoCPUs: 5e8},
			quota: new(int64(50000)), period: new(uint64(100000)), cpuMax: "50000 100000",
		},
		{
			name: "1.5 CPUs", res: Resources{NanoCPUs: 15e8},
			quota: new(int64(150000)), period: new(uint64(100000)), cpuMax: "150000 100000",
		},
		// cpu.weight keeps the defaults and both ends of the ranges:
		// shares [2, 262144] default 1024, weight [1, 10000] default 100.
		{name: "shares 512", res: Resources{CPUShares: 512}, shares: new(uint64(512)), weight: 59},
		{name: "shares 1024, the default", res: Resources{CPUShares: 1024}, shares: new(uint64(1024)), weight: 100},
		{name: "shares 2048", res: Resources{CPUShares: 2048}, shares: new(uint64(2048)), weight: 174},
		{name: "shares 2, the least", res: Resources{CPUShares: 2}, shares: new(uint64(2)), weight: 1},
		{name: "shares 262144, the most", res: Resources{CPUShares: 262144}, shares: new(uint64(262144)), weight: 10000},
		{name: "shares beyond the most", res: Resources{CPUShares: 1 << 20}, shares: new(uint64(1 << 20)), weight: 10000},
		{name: "pids", res: Resources{PidsLimit: 20}, pids: new(int64(20)), pidsMax: 20},
		{name: "pids -1 is no limit", res: Resources{PidsLimit: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v1 := v1Resources(tt.res, tt.swap)
			var mem specs.LinuxMemory
			if v1.Memory != nil {
				mem = *v1.Memory
			}
			var cpu specs.LinuxCPU
			if v1.CPU != nil {
				cpu = *v1.CPU
			}
			var pids *int64
			if v1.Pids != nil {
				pids = v1.Pids.Limit
			}
			for _, c := range []struct {
				file      string
				got, want any
			}{
				{"memory.limit_in_bytes", deref(mem.Limit), deref(tt.limit)},
				{"memory.soft_limit_in_bytes", deref(mem.Reservation), deref(tt.reservation)},
				{"memory.memsw.limit_in_bytes", deref(mem.Swap), deref(tt.memsw)},
				{"cpu.cfs_quota_us", deref(cpu.Quota), deref(tt.quota)},
				{"cpu.cfs_period_us", deref(cpu.Period), deref(tt.period)},
				{"cpu.shares", deref(cpu.Shares), deref(tt.shares)},
				{"pids.max", deref(pids), deref(tt.pids)},
			} {
				if c.got != c.want {
					t.Errorf("v1 %s = %s, want %s", c.file, c.got, c.want)
				}
			}

			v2 := v2Resources(tt.res, tt.swap)
			var mem2 cgroup2.Memory
			if v2.Memory != nil {
				mem2 = *v2.Memory
			}
			var cpu2 cgroup2.CPU
			if v2.CPU != nil {
				cpu2 = *v2.CPU
			}
			var pids2 cgroup2.Pids
			if v2.Pids != nil {
				pids2 = *v2.Pids
			}
			var weight uint64
			if cpu2.Weight != nil {
				weight = *cpu2.Weight
			}
			for _, c := range []struct {
				file      string
				got, want any
			}{
				{"memory.max", deref(mem2.Max), deref(tt.max)},
				{"memory.low", deref(mem2.Low), deref(tt.low)},
				{"memory.swap.max", deref(mem2.Swap), deref(tt.swapMax)},
				{"cpu.max", cpu2.Max, tt.cpuMax},
				{"cpu.weight", weight, tt.weight},
				{"pids.max", pids2.Max, tt.pidsMax},
			} {
				if c.got != c.want {
					t.Errorf("v2 %s = %v, want %v", c.file, c.got, c.want)
				}
			}
			// Nothing else is written: no cpuset, io or hugetlb file.
			if v2.CPU != nil && (cpu2.Cpus != "" || cpu2.Mems != "") || v2.IO != nil || v2.HugeTlb != nil || v2.RDMA != nil {
				t.Errorf("v2 resources set more than the limits: %+v", v2)
			}
		})
	}
}

// deref shows an optional value as the cgroup file would hold it, "unset"
// for none.
func deref[T int64 | uint64](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func TestResourcesValidate(t *testing.T) {
	ncpu := goruntime.NumCPU()
	tests := []struct {
		res  Resources
		want string // "" for valid
	}{
		{Resources{}, ""},
		{Resources{MemoryLimit: 6 << 20, MemoryReservation: 6 << 20, NanoCPUs: 1e7, CPUShares: 2, PidsLimit: 1}, ""},
		{Resources{NanoCPUs: int64(ncpu) * 1e9}, ""},
		{Resources{PidsLimit: -1}, ""},
		{Resources{MemoryLimit: -1}, "mem_limit: -1 bytes is negative"},
		{Resources{MemoryLimit: 4 << 20}, "mem_limit: 4194304 bytes is below the minimum of 6MB"},
		{Resources{MemoryReservation: -5}, "mem_reservation: -5 bytes is negative"},
		{Resources{MemoryReservation: 1 << 20}, "mem_reservation: 1048576 bytes is below the minimum of 6MB"},
		{Resources{MemoryLimit: 32 << 20, MemoryReservation: 64 << 20}, "mem_reservation: 67108864 bytes is above mem_limit (33554432 bytes)"},
		{Resources{NanoCPUs: 5e6}, fmt.Sprintf("cpus: 0.005 is out of range: from 0.01 to %d.00, as this host has %d CPUs", ncpu, ncpu)},
		{Resources{NanoCPUs: -1e9}, fmt.Sprintf("cpus: -1 is out of range: from 0.01 to %d.00, as this host has %d CPUs", ncpu, ncpu)},
		{Resources{NanoCPUs: int64(ncpu)*1e9 + 5e8}, fmt.Sprintf("cpus: %d.5 is out of range: from 0.01 to %d.00, as this host has %d CPUs", ncpu, ncpu, ncpu)},
	}
	for _, tt := range tests {
		err := tt.res.validate()
		if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
			t.Errorf("%+v: validate() = %v, want %q", tt.res, err, tt.want)
		}
	}
}

// containerCgroupFile reads a file of a running container's cgroup from the
// host: the v1 hierarchy of controller, or the container's v2 cgroup. ok is
// false when the file does not exist.
func containerCgroupFile(t *testing.T, name, controller, file string) (value string, ok bool) {
	t.Helper()
	h := detectCgroupHost()
	dir := filepath.Join(h.root, controller, h.group(name))
	if h.unified {
		dir = filepath.Join(h.root, h.group(name))
	}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if os.IsNotExist(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data)), true
}

func TestContainerLimits(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "limits", "echo up; exec sleep 300")
	spec.Resources = Resources{MemoryLimit: 32 << 20, MemoryReservation: 16 << 20, NanoCPUs: 5e8, CPUShares: 512, PidsLimit: 20}
	c := run(t, r, spec)
	waitLog(t, r, spec.Name, "stdout up")

	type want struct{ controller, file, value string }
	wants := []want{
		{"memory", "memory.limit_in_bytes", "33554432"},
		{"memory", "memory.soft_limit_in_bytes", "16777216"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.shares", "512"},
		{"pids", "pids.max", "20"},
	}
	swapFile, swapValue := "memory.memsw.limit_in_bytes", "67108864"
	if detectCgroupHost().unified {
		wants = []want{
			{"memory", "memory.max", "33554432"},
			{"memory", "memory.low", "16777216"},
			{"cpu", "cpu.max", "50000 100000"},
			{"cpu", "cpu.weight", "59"},
			{"pids", "pids.max", "20"},
		}
		swapFile, swapValue = "memory.swap.max", "33554432"
	}
	// Swap accounting is the kernel's choice (swapaccount=); where it
	// is on, the container gets as much swap as memory, as with docker.
	if _, ok := containerCgroupFile(t, spec.Name, "memory", swapFile); ok {
		wants = append(wants, want{"memory", swapFile, swapValue})
	} else {
		t.Logf("no %s: this kernel does not account swap", swapFile)
	}
	for _, w := range wants {
		got, ok := containerCgroupFile(t, spec.Name, w.controller, w.file)
		if !ok || got != w.value {
			t.Errorf("%s of %s = %q (exists %v), want %q", w.file, spec.Name, got, ok, w.value)
		}
	}

	// The limits hold the container's process: it is in that cgroup.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.State.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), ":/"+cgroupParent+"/"+spec.Name+"\n") {
		t.Errorf("process %d is not in cgroup %s:\n%s", c.State.Pid, spec.Name, data)
	}
}

func TestContainerPidsLimit(t *testing.T) {
	r := testRuntime(t)
	// The loop forks in a subshell, so that the shell survives its
	// failure; exec then keeps every pid taken.
	spec := shSpec(t, "pids", "(for i in $(seq 50); do sleep 300 & done); echo forked; exec sleep 300")
	spec.Resources.PidsLimit = 20
	run(t, r, spec)
	waitLog(t, r, spec.Name, "stdout forked")
	cur, ok := containerCgroupFile(t, spec.Name, "pids", "pids.current")
	if !ok {
		t.Fatalf("no pids.current in the cgroup of %s", spec.Name)
	}
	// PID 1 and the sleeps the subshell had room for (the subshell and
	// seq are gone): 19. Fewer would mean a limit below the one asked.
	if n, err := strconv.Atoi(cur); err != nil || n < 15 || n > 20 {
		t.Errorf("pids.current = %q, want 15..20", cur)
	}
	var forkFailed bool
	for _, l := range logLines(t, r, spec.Name) {
		if strings.HasPrefix(l, Stderr+" ") && strings.Contains(l, "can't fork") {
			forkFailed = true
		}
	}
	if !forkFailed {
		t.Errorf("no fork failed under pids_limit 20; log:\n%s", strings.Join(logLines(t, r, spec.Name), "\n"))
	}
}

func TestContainerOOMKilled(t *testing.T) {
	r := testRuntime(t)
	// The shell holds 40 MB in a variable: more than memory and swap
	// together (2 x 16 MiB) allow.
	spec := shSpec(t, "oom", `a=$(head -c 40000000 /dev/zero | tr "\0" x); echo survived`)
	spec.Resources.MemoryLimit = 16 << 20
	run(t, r, spec)
	c := waitStatus(t, r, spec.Name, Exited)
	if c.State.ExitCode != 137 || !c.State.OOMKilled {
		t.Errorf("state %+v, want exit code 137 and OOMKilled", c.State)
	}
	for _, l := range logLines(t, r, spec.Name) {
		if l == "stdout survived" {
			t.Errorf("the process survived 40 MB under mem_limit 16 MiB")
		}
	}
	checkNoCgroup(t, spec.Name)

	// Without a limit, the same script ends normally and is not OOMKilled.
	spec = shSpec(t, "nooom", `a=$(head -c 40000000 /dev/zero | tr "\0" x); echo survived`)
	run(t, r, spec)
	c = waitStatus(t, r, spec.Name, Exited)
	if c.State.ExitCode != 0 || c.State.OOMKilled {
		t.Errorf("state without a limit %+v, want exit code 0, not OOMKilled", c.State)
	}
}

// TestStartRefusesBadLimit: a limit the kernel would refuse fails the
// start with the field named, and leaves no cgroup.
func TestStartRefusesBadLimit(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "badlimit", "echo up")
	spec.Resources.MemoryLimit = 1 << 20
	ctx := context.Background()
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	err := r.Start(ctx, spec.Name)
	if err == nil || !strings.Contains(err.Error(), "mem_limit: 1048576 bytes is below the minimum of 6MB") {
		t.Fatalf("start with mem_limit 1 MiB: %v", err)
	}
	c, err := r.Get(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Status != Created || !strings.Contains(c.State.Error, "mem_limit") {
		t.Errorf("state %+v", c.State)
	}
	checkNoCgroup(t, spec.Name)
}
