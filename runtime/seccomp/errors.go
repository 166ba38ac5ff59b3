package seccomp

import "errors"

var (
	// ErrInvalidProfile is a profile berth cannot apply: bad JSON, an
	// unknown action, operator, architecture or flag, or a rule that makes
	// no sense. The message says where in the profile.
	ErrInvalidProfile = errors.New("invalid seccomp profile")
	// ErrUnsupported is a valid profile or platform berth cannot filter
	// for: SCMP_ACT_NOTIFY (it needs a seccomp agent), or a GOARCH without
	// syscall tables.
	ErrUnsupported = errors.New("seccomp: not supported by berth")
)
