package runtime

import "errors"

var (
	// ErrNotFound: no container of that name.
	ErrNotFound = errors.New("no such container")
	// ErrExists: a container of that name already exists.
	ErrExists = errors.New("container already exists")
	// ErrNotRunning: the operation needs a running container.
	ErrNotRunning = errors.New("container is not running")
)
