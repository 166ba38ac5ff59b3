package build

import "errors"

var (
	// ErrDockerfile: the Dockerfile cannot be read or parsed, names an
	// unknown instruction, or uses one in a way berth does not support.
	ErrDockerfile = errors.New("invalid Dockerfile")
	// ErrOutsideContext: a COPY or ADD source leads outside the build
	// context (../, or a symlink out of it).
	ErrOutsideContext = errors.New("forbidden path outside the build context")
	// ErrSourceNotFound: a COPY or ADD source is not there (or is
	// excluded by .dockerignore).
	ErrSourceNotFound = errors.New("source not found")
	// ErrRunFailed: a RUN step's command could not start or exited with a
	// status other than 0.
	ErrRunFailed = errors.New("RUN failed")
	// ErrUnknownStage: a target, FROM or COPY --from names no stage of the
	// Dockerfile (nor, for --from, an image).
	ErrUnknownStage = errors.New("unknown build stage")
)
