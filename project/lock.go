package project

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockProject takes the project's lock, an flock on BERTH_ROOT/locks/NAME,
// held around every change to the project's containers and volumes. The
// lock files stay: removing one while another process waits on it would
// hand two processes the "same" lock.
func (e *Engine) lockProject(name string) (unlock func(), err error) {
	dir := filepath.Join(e.root, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock project %q: %w", name, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock project %q: %w", name, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock project %q: flock: %w", name, err)
	}
	return func() { f.Close() }, nil
}
