package project

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/runtime"
)

// restartPolicy reads `restart:` and `deploy.restart_policy` (which wins,
// as in docker compose) into the monitor's policy.
func restartPolicy(s types.ServiceConfig) (runtime.RestartPolicy, error) {
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil {
		rp := s.Deploy.RestartPolicy
		p := runtime.RestartPolicy{}
		switch rp.Condition {
		case "", "any":
			p.Name = "always"
		case "on-failure":
			p.Name = "on-failure"
		case "none":
			p.Name = "no"
		default:
			return p, fmt.Errorf("deploy.restart_policy.condition: %q is not one of none, on-failure, any", rp.Condition)
		}
		if rp.MaxAttempts != nil {
			if p.Name == "always" {
				p.Name = "on-failure" // a bounded "any" only makes sense for failures
			}
			p.MaxRetries = int(*rp.MaxAttempts)
		}
		return p, nil
	}
	name, max, _ := strings.Cut(s.Restart, ":")
	p := runtime.RestartPolicy{Name: name}
	switch name {
	case "", "no":
		p.Name = "no"
	case "always", "unless-stopped":
	case "on-failure":
		if max != "" {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return p, fmt.Errorf("restart: %q: the retry count must be a number", s.Restart)
			}
			p.MaxRetries = n
		}
	default:
		return p, fmt.Errorf("restart: %q is not one of no, always, on-failure[:N], unless-stopped", s.Restart)
	}
	if max != "" && name != "on-failure" {
		return p, fmt.Errorf("restart: %q: only on-failure takes a retry count", s.Restart)
	}
	return p, nil
}

// resources reads the service's limits: the top-level keys (mem_limit,
// cpus…) and deploy.resources, which wins where both are set, as docker
// compose merges them.
func resources(s types.ServiceConfig) (runtime.Resources, error) {
	r := runtime.Resources{
		MemoryLimit:       int64(s.MemLimit),
		MemoryReservation: int64(s.MemReservation),
		NanoCPUs:          int64(math.Round(float64(s.CPUS) * 1e9)),
		PidsLimit:         s.PidsLimit,
	}
	if r.PidsLimit == -1 {
		r.PidsLimit = 0 // compose's "unlimited"
	}
	if s.CPUShares < 0 {
		return r, fmt.Errorf("cpu_shares: %d must not be negative", s.CPUShares)
	}
	r.CPUShares = uint64(s.CPUShares)
	if s.Deploy != nil {
		if l := s.Deploy.Resources.Limits; l != nil {
			if l.MemoryBytes > 0 {
				r.MemoryLimit = int64(l.MemoryBytes)
			}
			if l.NanoCPUs > 0 {
				r.NanoCPUs = int64(math.Round(float64(l.NanoCPUs) * 1e9))
			}
			if l.Pids > 0 {
				r.PidsLimit = l.Pids
			} else if l.Pids == -1 {
				r.PidsLimit = 0
			}
		}
		if rv := s.Deploy.Resources.Reservations; rv != nil && rv.MemoryBytes > 0 {
			r.MemoryReservation = int64(rv.MemoryBytes)
		}
	}
	switch {
	case r.MemoryLimit < 0, r.MemoryReservation < 0, r.NanoCPUs < 0, r.PidsLimit < 0:
		return r, fmt.Errorf("resource limits must not be negative")
	case r.MemoryLimit > 0 && r.MemoryLimit < 6<<20:
		return r, fmt.Errorf("mem_limit: %d bytes is below docker's minimum of 6 MiB", r.MemoryLimit)
	case r.MemoryLimit > 0 && r.MemoryReservation > r.MemoryLimit:
		return r, fmt.Errorf("mem_reservation: %d bytes is above mem_limit (%d bytes)", r.MemoryReservation, r.MemoryLimit)
	}
	return r, nil
}
