package project

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime"
)

// The steps of one container's life that the engine's commands share:
// create (with its network), start, stop, remove, and the events the
// engine records for them.

func (e *Engine) createContainer(ctx context.Context, in specInput, sn serviceNet, recs map[string]network.Network) (string, error) {
	spec, err := containerSpec(in)
	if err != nil {
		return "", err
	}
	e.emit(Creating, containerObject(spec.Name), "")
	if err := e.containerNetwork(&spec, in.Project, in.Service.Name, sn, recs); err != nil {
		return "", err
	}
	if err := e.create(ctx, spec); err != nil {
		e.releaseContainer(spec.Name)
		if errors.Is(err, runtime.ErrExists) {
			return "", fmt.Errorf("container name %q is already in use: remove that container or change container_name", spec.Name)
		}
		return "", fmt.Errorf("create container: %w", err)
	}
	e.emit(Created, containerObject(spec.Name), "")
	return spec.Name, nil
}

// create has the runtime create a container and records its create event.
func (e *Engine) create(ctx context.Context, spec runtime.Spec) error {
	if _, err := e.runtime.Create(ctx, spec); err != nil {
		return err
	}
	e.event(spec, eventCreate)
	return nil
}

// The events the engine records itself; the monitor records the others.
const (
	eventCreate  = "create"
	eventDestroy = "destroy"
)

// event appends action on the container of spec to its event log. A log
// that cannot be written costs a warning, not the container.
func (e *Engine) event(spec runtime.Spec, action string) {
	if spec.EventLog == "" {
		return
	}
	if err := runtime.AppendEvent(spec.EventLog, runtime.Event{Action: action, Container: spec.Name, ID: spec.ID}); err != nil {
		e.warn(fmt.Sprintf("container %s: %v", spec.Name, err))
	}
}

func (e *Engine) startContainer(ctx context.Context, name string) error {
	if c, err := e.runtime.Get(name); err == nil && !live(c) {
		for _, p := range containerPorts(c) {
			if err := checkPortFree(p); err != nil {
				return fmt.Errorf("ports: %w", err)
			}
		}
	}
	e.emit(Starting, containerObject(name), "")
	if err := e.runtime.Start(ctx, name); err != nil {
		e.emit(ErrorEvent, containerObject(name), err.Error())
		return fmt.Errorf("start container %s: %w", name, err)
	}
	e.emit(Started, containerObject(name), "")
	return nil
}

func (e *Engine) stopContainer(ctx context.Context, c *runtime.Container, timeout *time.Duration) error {
	if c.State.Status == runtime.Dead {
		// Its records are broken: what it runs is unknown. The runtime
		// stops it through a monitor that still answers, if there is one.
		if err := e.runtime.Stop(ctx, c.Spec.Name, stopTimeout(timeout)); err != nil {
			return fmt.Errorf("stop container %s: %w", c.Spec.Name, err)
		}
		return nil
	}
	if !live(c) {
		return nil
	}
	e.emit(Stopping, containerObject(c.Spec.Name), "")
	if err := e.runtime.Stop(ctx, c.Spec.Name, stopTimeout(timeout)); err != nil {
		return fmt.Errorf("stop container %s: %w", c.Spec.Name, err)
	}
	e.emit(Stopped, containerObject(c.Spec.Name), "")
	return nil
}

// deadWarning tells of a dead container (one whose records are broken)
// what is wrong and what removes it.
func deadWarning(c *runtime.Container) string {
	return fmt.Sprintf("container %s is dead (%s): what it runs is unknown; berth down or berth rm -f removes it", c.Spec.Name, c.State.Error)
}

// stopByName stops a container by name, if it exists and is up.
func (e *Engine) stopByName(ctx context.Context, name string, timeout *time.Duration) error {
	c, err := e.runtime.Get(name)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return e.stopContainer(ctx, c, timeout)
}

func (e *Engine) removeContainer(ctx context.Context, name string, timeout *time.Duration) error {
	c, err := e.runtime.Get(name)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if err := e.stopContainer(ctx, c, timeout); err != nil {
		return err
	}
	e.emit(Removing, containerObject(name), "")
	if err := e.deleteContainer(ctx, name); err != nil {
		return err
	}
	e.emit(Removed, containerObject(name), "")
	return nil
}

// deleteContainer removes a container and gives back its addresses.
func (e *Engine) deleteContainer(ctx context.Context, name string) error {
	c, _ := e.runtime.Get(name)
	if err := e.runtime.Delete(ctx, name); err != nil {
		return fmt.Errorf("remove container %s: %w", name, err)
	}
	if c != nil {
		e.event(c.Spec, eventDestroy)
		// The pairs go with the container's namespace, but the kernel
		// tears a namespace down in the background: take them now, so
		// that a down leaves nothing behind the moment it returns.
		if err := e.detachContainer(c); err != nil {
			return fmt.Errorf("remove container %s: %w", name, err)
		}
	}
	if err := e.releaseContainer(name); err != nil {
		return fmt.Errorf("remove container %s: release its addresses: %w", name, err)
	}
	return nil
}
