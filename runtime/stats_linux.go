package runtime

import (
	"fmt"

	cgroup1 "github.com/containerd/cgroups/v3/cgroup1"
)

// Stats are a running container's resource use, from its cgroup.
type Stats struct {
	// CPUNanos is the CPU time its processes used, in all, since it
	// started: two samples give a CPU percentage.
	CPUNanos uint64
	// MemoryBytes is the memory it uses now (the cgroup's usage, page
	// cache included, as docker's before it subtracts inactive files),
	// and MemoryLimit its limit (0: none).
	MemoryBytes uint64
	MemoryLimit uint64
}

// Stats reads the resource use of the container name; ErrNotRunning when
// it has no cgroup (it does not run).
func (r *Runtime) Stats(name string) (Stats, error) {
	cg, err := loadCgroup(name)
	if err != nil {
		return Stats{}, fmt.Errorf("container %s: %w", name, err)
	}
	if cg == nil {
		return Stats{}, ErrNotRunning
	}
	return cg.stats()
}

func (c *containerCgroup) stats() (Stats, error) {
	if c.v2 != nil {
		m, err := c.v2.Stat()
		if err != nil {
			return Stats{}, fmt.Errorf("cgroup stats: %w", err)
		}
		var s Stats
		if m.CPU != nil {
			s.CPUNanos = m.CPU.UsageUsec * 1000
		}
		if m.Memory != nil {
			s.MemoryBytes, s.MemoryLimit = m.Memory.Usage, m.Memory.UsageLimit
		}
		if s.MemoryLimit >= 1<<62 {
			s.MemoryLimit = 0
		}
		return s, nil
	}
	m, err := c.v1.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return Stats{}, fmt.Errorf("cgroup stats: %w", err)
	}
	var s Stats
	if m.CPU != nil && m.CPU.Usage != nil {
		s.CPUNanos = m.CPU.Usage.Total
	}
	if m.Memory != nil && m.Memory.Usage != nil {
		s.MemoryBytes, s.MemoryLimit = m.Memory.Usage.Usage, m.Memory.Usage.Limit
	}
	// No limit reads as the largest page-aligned value.
	if s.MemoryLimit >= 1<<62 {
		s.MemoryLimit = 0
	}
	return s, nil
}
