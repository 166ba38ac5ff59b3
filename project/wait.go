package project

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/runtime"
)

// Waiting for containers: the conditions of depends_on and of `up --wait`
// are read from each container's state, which its monitor keeps (status,
// exit code, health), polled until met, failed, or the context ends.

// condition is what a container is waited for.
type condition int

const (
	// condHealthy: its healthcheck says healthy (service_healthy).
	condHealthy condition = iota
	// condCompleted: it exited with code 0 (service_completed_successfully).
	condCompleted
	// condRunningOrHealthy: healthy when it has a healthcheck, else
	// running (what `up --wait` waits for).
	condRunningOrHealthy
)

// pollInterval is how often a waited-for container's state is read.
const pollInterval = 25 * time.Millisecond

// errNotStarted: the container waited for was never started.
var errNotStarted = errors.New("was not started")

// readiness says whether c meets cond now (true), not yet (false, nil), or
// never will (an error that reads after the container's name:
// "web-1 is unhealthy").
func readiness(c *runtime.Container, cond condition) (bool, error) {
	st := c.State
	name := c.Spec.Name
	switch st.Status {
	case runtime.Exited, runtime.Dead:
		if cond == condCompleted && st.Status == runtime.Exited && st.ExitCode == 0 {
			return true, nil
		}
		if st.Status == runtime.Dead {
			return false, fmt.Errorf("%s is dead: %s", name, st.Error)
		}
		return false, fmt.Errorf("%s exited with code %d", name, st.ExitCode)
	case runtime.Created:
		return false, fmt.Errorf("%s %w", name, errNotStarted)
	}
	// running, restarting or paused: it may still get there
	if cond == condCompleted {
		return false, nil
	}
	if c.Spec.Healthcheck == nil {
		if cond == condHealthy {
			return false, fmt.Errorf("%s has no healthcheck configured", name)
		}
		return st.Status == runtime.Running, nil
	}
	if st.Status != runtime.Running || st.Health == nil {
		return false, nil
	}
	switch st.Health.Status {
	case runtime.Healthy:
		return true, nil
	case runtime.Unhealthy:
		return false, fmt.Errorf("%s is unhealthy%s", name, lastProbe(st.Health))
	}
	return false, nil
}

// lastProbe says what the last failed probe printed, for the one-line error.
func lastProbe(h *runtime.Health) string {
	if len(h.Log) == 0 {
		return ""
	}
	last := h.Log[len(h.Log)-1]
	out := strings.Join(strings.Fields(last.Output), " ")
	if r := []rune(out); len(r) > 100 {
		out = string(r[:99]) + "…"
	}
	if out == "" {
		return fmt.Sprintf(" (last probe: exit %d)", last.ExitCode)
	}
	return fmt.Sprintf(" (last probe: exit %d: %s)", last.ExitCode, out)
}

// waitState describes where a container is on its way, for a timeout's
// error: "running", "running, health: starting", "restarting".
func waitState(c *runtime.Container) string {
	s := string(c.State.Status)
	if c.State.Status == runtime.Running && c.Spec.Healthcheck != nil {
		health := runtime.HealthStarting
		if c.State.Health != nil {
			health = c.State.Health.Status
		}
		s += ", health: " + string(health)
	}
	return s
}

// stateReader is what waiting needs of the runtime.
type stateReader interface {
	Get(name string) (*runtime.Container, error)
}

var _ stateReader = (*runtime.Runtime)(nil)

// waitTarget is one container and what it is waited for.
type waitTarget struct {
	Name string
	Cond condition
}

// notReadyError: the context ended while containers were still waited
// for. It unwraps to the context's error.
type notReadyError struct {
	// Pending describes the containers not ready: "p-db-1 (starting)".
	Pending []string
	err     error
}

func (e *notReadyError) Error() string {
	return fmt.Sprintf("%v; not ready: %s", e.err, strings.Join(e.Pending, ", "))
}

func (e *notReadyError) Unwrap() error { return e.err }

// waitReady polls the targets' states until every one meets its condition,
// calling ready once for each as it does. A target that cannot get there
// (see readiness) ends the wait with its error; the context's end, with a
// notReadyError.
func waitReady(ctx context.Context, rt stateReader, targets []waitTarget, ready func(waitTarget, *runtime.Container)) error {
	pending := map[string]string{}
	for _, t := range targets {
		pending[t.Name] = "not looked at yet"
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		for _, t := range targets {
			if _, ok := pending[t.Name]; !ok {
				continue
			}
			c, err := rt.Get(t.Name)
			if errors.Is(err, runtime.ErrNotFound) {
				return fmt.Errorf("container %s is gone", t.Name)
			} else if err != nil {
				return err
			}
			ok, err := readiness(c, t.Cond)
			if err != nil {
				return err
			}
			if !ok {
				pending[t.Name] = waitState(c)
				continue
			}
			delete(pending, t.Name)
			if ready != nil {
				ready(t, c)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			var list []string
			for _, t := range targets {
				if st, ok := pending[t.Name]; ok {
					list = append(list, fmt.Sprintf("%s (%s)", t.Name, st))
				}
			}
			return &notReadyError{Pending: list, err: ctx.Err()}
		case <-tick.C:
		}
	}
}

// WaitReady is `up --wait`: after an Up with the same options, it waits
// until every container that up brought up runs and, when it has a
// healthcheck, is healthy; a service that another depends on with
// service_completed_successfully is waited for until it exits with code 0
// instead, as docker compose does. A container that exits otherwise, or
// becomes unhealthy, ends the wait with an error; so does the timeout (0:
// none), naming the containers not ready.
func (e *Engine) WaitReady(ctx context.Context, p *types.Project, opts UpOptions, timeout time.Duration) error {
	graph, err := NewGraph(p)
	if err != nil {
		return inFile(p, err)
	}
	want, err := upServices(p, graph, opts)
	if err != nil {
		return err
	}
	completes := map[string]bool{}
	for name := range want {
		for dep, cfg := range p.Services[name].DependsOn {
			if cfg.Condition == types.ServiceConditionCompletedSuccessfully {
				completes[dep] = true
			}
		}
	}
	var targets []waitTarget
	for _, name := range graph.Order() {
		if !want[name] {
			continue
		}
		cond := condRunningOrHealthy
		if completes[name] {
			cond = condCompleted
		}
		for _, c := range serviceContainers(p, p.Services[name]) {
			targets = append(targets, waitTarget{Name: c, Cond: cond})
			e.emit(Waiting, containerObject(c), "")
		}
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	err = waitReady(ctx, e.states, targets, func(t waitTarget, c *runtime.Container) {
		switch {
		case c.State.Status == runtime.Exited:
			e.emit(Exited, containerObject(t.Name), "")
		case c.Spec.Healthcheck != nil:
			e.emit(Healthy, containerObject(t.Name), "")
		default:
			e.emit(Running, containerObject(t.Name), "")
		}
	})
	var nr *notReadyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nr) && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("application not healthy after %s: %s", timeout, strings.Join(nr.Pending, ", "))
	case errors.As(err, &nr):
		return err
	}
	return fmt.Errorf("application not healthy: %w", err)
}
