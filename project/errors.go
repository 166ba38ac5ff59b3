package project

import "errors"

// Sentinels of the loader and the graph, for errors.Is. The messages read
// as docker compose's do, so that wrapping them keeps the familiar text.
var (
	// ErrNoConfigFile: no -f, no COMPOSE_FILE and no compose.yaml (or one of
	// its alternative names) in the directory or any of its parents.
	ErrNoConfigFile = errors.New("no configuration file provided")

	// ErrInvalidConfig marks every error about the content of the compose
	// files: YAML syntax, schema, interpolation, consistency.
	ErrInvalidConfig = errors.New("invalid compose project")

	// ErrUndefinedService: a service depends on one that is not declared
	// (or is disabled by its profiles while the dependency is required).
	ErrUndefinedService = errors.New("undefined service")

	// ErrDependencyCycle: depends_on makes a cycle.
	ErrDependencyCycle = errors.New("dependency cycle detected")

	// errNoImage: a service with neither image nor build (the loader
	// refuses those first).
	errNoImage = errors.New("no image: set image, or build to build one")

	// ErrNoSuchService: a service named on the command line is not in the
	// project.
	ErrNoSuchService = errors.New("no such service")
)

// fileError names the compose files an error is about and marks it as
// ErrInvalidConfig, keeping the cause for errors.Is and errors.As.
type fileError struct {
	file string
	err  error
}

func (e *fileError) Error() string { return e.file + ": " + e.err.Error() }

func (e *fileError) Unwrap() []error { return []error{ErrInvalidConfig, e.err} }
