package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Discard removes a container for good, as Delete does, for a teardown
// that must finish on a full disk: this process writes nothing on the way.
//
// A container whose monitor is gone (Get shows the exit that followed)
// would have that exit recorded by Delete first (reapDead), a write of
// state.json that fails on a full disk and that nobody would read, since
// the directory goes next. Here its cgroup is killed and removed and its
// directory goes, without that record. A container a monitor still runs
// (or whose records are broken) goes through Delete, which has the
// monitor stop it: what is written then is the monitor's to write.
func (r *Runtime) Discard(ctx context.Context, name string) error {
	var since time.Time
	var c *Container
	for {
		var err error
		c, err = r.Get(name)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if c.State.Status == Dead {
			return r.Delete(ctx, name)
		}
		if !c.State.Status.Alive() {
			break
		}
		if _, err := os.Lstat(filepath.Join(c.Dir, monitorSock)); err == nil {
			return r.Delete(ctx, name)
		}
		// The monitor is finishing (a stop just ended the process): it
		// removes its socket before it records the exit, which a full
		// disk may refuse it. Let it end, then look again.
		if err := r.waitAgain(ctx, &since); errors.Is(err, errNoMonitor) {
			return r.Delete(ctx, name) // hung: Delete says so
		} else if err != nil {
			return fmt.Errorf("remove container %q: wait for its monitor: %w", name, err)
		}
	}
	return r.removeRemains(ctx, c)
}
