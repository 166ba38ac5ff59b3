package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lock takes the store's exclusive lock, waiting for other processes (and
// other goroutines: each call opens its own file description) to release it.
func (s *Store) lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock image store: %w", err)
	}
	if err := flock(f, unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock image store: flock %s: %w", f.Name(), err)
	}
	// Closing the last descriptor releases the lock.
	return func() { f.Close() }, nil
}

func flock(f *os.File, how int) error {
	conn, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = conn.Control(func(fd uintptr) {
		for {
			ferr = unix.Flock(int(fd), how)
			if !errors.Is(ferr, unix.EINTR) {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return ferr
}

// op is the private work folder of one operation under tmp/: spooled
// archives, layers being unpacked, layers being deleted. The operation holds
// an flock on the folder while it runs, so that sweepTmp can tell the folder
// of a killed process (lock free) from a busy one.
type op struct {
	dir  string
	lock *os.File
	n    int
}

// newOp makes a work folder. It takes the store lock for a moment so that
// sweepTmp never sees the folder before it is locked.
func (s *Store) newOp() (*op, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.newOpLocked()
}

// newOpLocked is newOp for a caller that holds the store lock.
func (s *Store) newOpLocked() (o *op, err error) {
	dir, err := os.MkdirTemp(filepath.Join(s.dir, tmpDir), "op-")
	if err != nil {
		return nil, fmt.Errorf("make work folder: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("make work folder: %w", err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("make work folder: flock %s: %w", dir, err)
	}
	return &op{dir: dir, lock: f}, nil
}

// path returns a new unused name in the work folder.
func (o *op) path(prefix string) string {
	o.n++
	return filepath.Join(o.dir, fmt.Sprintf("%s-%d", prefix, o.n))
}

// close removes the work folder, then releases its lock.
func (o *op) close() {
	os.RemoveAll(o.dir)
	o.lock.Close()
}

// sweepTmp removes the work folders of operations that died. Callers hold
// the store lock.
func (s *Store) sweepTmp() {
	// Index files a killed writer left half-written.
	if stale, err := filepath.Glob(filepath.Join(s.dir, "."+indexFile+".tmp-*")); err == nil {
		for _, p := range stale {
			os.Remove(p)
		}
	}
	root := filepath.Join(s.dir, tmpDir)
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(root, e.Name())
		if !e.IsDir() {
			os.Remove(p)
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if flock(f, unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.RemoveAll(p)
		}
		f.Close()
	}
}
