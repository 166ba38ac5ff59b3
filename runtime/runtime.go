package runtime

import (
	"context"
	"syscall"
	"time"
)

// Runtime manages the containers whose directories live under one folder
// (BERTH_ROOT/containers). Every method is safe to call from several
// processes at once for different containers; callers serialise changes to
// one project with the project lock.
type Runtime struct {
	dir string
}

// New returns a Runtime over dir, creating it if needed.
func New(dir string) (*Runtime, error) { panic("runtime.New: not written yet") }

// Container is a snapshot of one container: its spec, its recorded state
// (with Dead derived when the monitor is gone) and its directory.
type Container struct {
	Spec  Spec
	State State
	Dir   string
}

// LogPath is the container's log file (one line per output line, CRI format).
func (c *Container) LogPath() string { panic("not written yet") }

// Create writes the container's directory and config atomically; the
// container is Created and nothing runs. ErrExists if the name is taken.
func (r *Runtime) Create(ctx context.Context, spec Spec) (*Container, error) {
	panic("not written yet")
}

// Get reads one container. ErrNotFound if there is none of that name.
func (r *Runtime) Get(name string) (*Container, error) { panic("not written yet") }

// List reads every container, sorted by name. Half-created directories left
// by a killed process are removed, not listed.
func (r *Runtime) List() ([]*Container, error) { panic("not written yet") }

// Start spawns the container's monitor, which starts the process in new
// namespaces, and returns once the process runs (exec succeeded) or with the
// reason it could not start, as the container's init reported it.
func (r *Runtime) Start(ctx context.Context, name string) error { panic("not written yet") }

// Stop sends the stop signal, then SIGKILL after timeout (the spec's
// StopTimeout when timeout < 0), and returns when the process has exited.
// Stopping a container that is not running is not an error.
func (r *Runtime) Stop(ctx context.Context, name string, timeout time.Duration) error {
	panic("not written yet")
}

// Kill sends sig to the container's process.
func (r *Runtime) Kill(ctx context.Context, name string, sig syscall.Signal) error {
	panic("not written yet")
}

// Delete kills the container if it still runs and removes its cgroup and
// directory. A container that is already gone is success.
func (r *Runtime) Delete(ctx context.Context, name string) error { panic("not written yet") }
