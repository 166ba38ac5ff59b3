package runtime

import (
	"fmt"
	"sort"
	"syscall"
)

// ParseSignal reads a signal as docker takes it: "SIGTERM", "TERM", "15".
func ParseSignal(s string) (syscall.Signal, error) { return parseSignal(s) }

// Processes lists the PIDs (as the host sees them) of every process of the
// container, from its cgroup; none when it does not run.
func (r *Runtime) Processes(name string) ([]int, error) {
	c, err := r.Get(name)
	if err != nil {
		return nil, err
	}
	if c.State.Status != Running && c.State.Status != Paused {
		return nil, nil
	}
	cg, err := loadCgroup(name)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, err)
	}
	if cg == nil {
		return nil, nil
	}
	pids, err := cg.pids()
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, err)
	}
	sort.Ints(pids)
	return pids, nil
}
