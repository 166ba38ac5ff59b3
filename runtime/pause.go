package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Pause freezes every process of the running container (the cgroup
// freezer); it stays paused until Unpause. A stop or a kill thaws it first,
// so that the signal is delivered.
func (r *Runtime) Pause(ctx context.Context, name string) error {
	return r.control(ctx, name, "pause", controlRequest{Op: opPause})
}

// Unpause thaws a paused container.
func (r *Runtime) Unpause(ctx context.Context, name string) error {
	return r.control(ctx, name, "unpause", controlRequest{Op: opUnpause})
}

// control sends req to the monitor of a live container, for what.
func (r *Runtime) control(ctx context.Context, name, what string, req controlRequest) error {
	c, err := r.Get(name)
	if err != nil {
		return err
	}
	if !c.State.Status.Alive() {
		return fmt.Errorf("%s container %s: %w", what, name, ErrNotRunning)
	}
	reply, err := callControl(ctx, c.Dir, req)
	if errors.Is(err, errNoMonitor) {
		return fmt.Errorf("%s container %s: %w", what, name, ErrNotRunning)
	}
	if err == nil {
		err = reply.err()
	}
	if err != nil {
		return fmt.Errorf("%s container %s: %w", what, name, err)
	}
	return nil
}

// pause freezes the run's processes and records the container paused.
func (m *monitor) pause() controlReply {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.state.Status == Paused:
		return controlReply{Error: "container is already paused"}
	case m.state.Status != Running || m.cg == nil:
		return controlReply{Code: codeNotRunning, Error: ErrNotRunning.Error()}
	}
	if !m.cg.freeze() {
		return controlReply{Error: "the cgroup freezer is not available on this host"}
	}
	if err := m.setStatusLocked(Paused); err != nil {
		m.cg.thaw()
		return controlReply{Error: err.Error()}
	}
	m.event(EventPause, nil)
	return controlReply{}
}

// unpause thaws the run's processes and records the container running.
func (m *monitor) unpause() controlReply {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state.Status != Paused || m.cg == nil {
		return controlReply{Error: "container is not paused"}
	}
	if err := m.cg.thaw(); err != nil {
		return controlReply{Error: fmt.Sprintf("thaw: %v", err)}
	}
	if err := m.setStatusLocked(Running); err != nil {
		return controlReply{Error: err.Error()}
	}
	m.event(EventUnpause, nil)
	return controlReply{}
}

// thawToSignal thaws a paused container before a stop or a kill signals
// it, and returns its state as it is then.
func (m *monitor) thawToSignal(st State) State {
	if st.Status != Paused {
		return st
	}
	if r := m.unpause(); r.Error != "" {
		fmt.Fprintf(os.Stderr, "berth monitor: %s\n", r.Error)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// setStatusLocked records status; m.mu is held.
func (m *monitor) setStatusLocked(status Status) error {
	st := m.state
	st.Status = status
	if err := writeState(m.dir, st); err != nil {
		return fmt.Errorf("record state: %w", err)
	}
	m.state = st
	return nil
}
