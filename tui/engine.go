package tui

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime"
)

// EngineSource is the Source of a project that a project.Engine runs: what
// `berth up --tui` and `berth tui` show.
type EngineSource struct {
	Engine *project.Engine
	// Name is the project's name; Project its loaded file, which the
	// actions need (nil: actions say so).
	Name    string
	Project *types.Project
	// ShellCommand is the berth command line that reaches the project, without
	// the subcommand: e.g. {"/proc/self/exe", "-p", "shop"}; the shell is
	// `… exec --index N SERVICE sh`.
	ShellCommand []string
	// Tail is how many lines of each container's log come first (default
	// 200).
	Tail int
	// Timeout is the stop grace period of stop and restart (nil: each
	// container's own).
	Timeout *time.Duration
}

var _ Source = (*EngineSource)(nil)

// Containers lists the project's containers with their cgroup's use.
func (s *EngineSource) Containers(ctx context.Context) ([]Container, error) {
	cs, err := s.Engine.Containers(s.Name, nil, true)
	if err != nil {
		return nil, err
	}
	out := make([]Container, 0, len(cs))
	for _, c := range cs {
		row := Container{
			Name:      project.DisplayName(c),
			Service:   c.Spec.Labels[project.LabelService],
			State:     State(c.State.Status),
			ExitCode:  c.State.ExitCode,
			Ports:     project.PortText(c),
			Restarts:  c.State.RestartCount,
			StartedAt: c.State.StartedAt,
		}
		if c.State.Status.Alive() {
			if h := c.State.Health; h != nil {
				row.Health = Health(h.Status)
			}
			if st, err := s.Engine.Runtime().Stats(c.Spec.Name); err == nil {
				row.CPUNanos, row.MemoryBytes = st.CPUNanos, st.MemoryBytes
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// logPoll is how often Logs looks for containers to follow: new ones, and
// ones started again.
const logPoll = 300 * time.Millisecond

// followed is what Logs knows of one container's log.
type followed struct {
	id     string
	active bool
	// last is the time of the last line read: a follow that starts again
	// after a stop goes on from there.
	last time.Time
}

// Logs follows every container of the project, including those that
// appear later and those started again, until ctx ends.
func (s *EngineSource) Logs(ctx context.Context, emit func(LogLine)) error {
	tail := s.Tail
	if tail == 0 {
		tail = 200
	}
	var (
		mu    sync.Mutex
		state = map[string]*followed{}
		wg    sync.WaitGroup
	)
	defer wg.Wait()
	first := true
	tick := time.NewTicker(logPoll)
	defer tick.Stop()
	for {
		cs, err := s.Engine.Containers(s.Name, nil, true)
		if err != nil {
			return err
		}
		for _, c := range cs {
			name := c.Spec.Name
			mu.Lock()
			f := state[name]
			if f != nil && f.id != c.Spec.ID {
				f = nil // recreated: a new log
			}
			if f == nil {
				f = &followed{id: c.Spec.ID}
				state[name] = f
			} else if f.active || !c.State.Status.Alive() {
				mu.Unlock()
				continue
			}
			opts := runtime.LogOptions{Follow: true, Tail: -1}
			switch {
			case !f.last.IsZero():
				opts.Since = f.last.Add(time.Nanosecond)
			case first:
				opts.Tail = tail
			}
			f.active = true
			mu.Unlock()
			display, service := project.DisplayName(c), c.Spec.Labels[project.LabelService]
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.Engine.Runtime().ReadLogs(ctx, name, opts, func(e runtime.LogEntry) error {
					mu.Lock()
					f.last = e.Time
					mu.Unlock()
					emit(LogLine{Container: display, Service: service, Time: e.Time, Stream: e.Stream, Text: string(e.Text)})
					return nil
				})
				mu.Lock()
				f.active = false
				mu.Unlock()
				if err != nil && ctx.Err() == nil && !errors.Is(err, runtime.ErrNotFound) {
					emit(LogLine{Container: display, Service: service, Time: time.Now(), Stream: "stderr", Text: "berth: " + err.Error()})
				}
			}()
		}
		first = false
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Act restarts, stops or starts a service (every service when "").
func (s *EngineSource) Act(ctx context.Context, a Action, service string) error {
	if s.Project == nil {
		return fmt.Errorf("%s needs the project's compose file: run berth from its folder", a)
	}
	var services []string
	if service != "" {
		services = []string{service}
	}
	switch a {
	case Restart:
		return s.Engine.Restart(ctx, s.Project, services, s.Timeout)
	case Stop:
		return s.Engine.Stop(ctx, s.Project, services, s.Timeout)
	case Start:
		return s.Engine.Start(ctx, s.Project, services)
	}
	return fmt.Errorf("unknown action %v", a)
}

// Shell is `berth exec` of a shell in the container, on the terminal.
func (s *EngineSource) Shell(ctx context.Context, container string) (*exec.Cmd, error) {
	if len(s.ShellCommand) == 0 {
		return nil, errors.New("shell: no berth command to run")
	}
	cs, err := s.Engine.Containers(s.Name, nil, false)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if project.DisplayName(c) != container {
			continue
		}
		num, err := strconv.Atoi(c.Spec.Labels[project.LabelNumber])
		if err != nil {
			num = 1
		}
		args := append(append([]string{}, s.ShellCommand[1:]...), "exec", "--index", strconv.Itoa(num), c.Spec.Labels[project.LabelService], "sh")
		return exec.CommandContext(ctx, s.ShellCommand[0], args...), nil
	}
	return nil, fmt.Errorf("%s is not running", container)
}
