package runtime

import (
	"fmt"

	"github.com/berth-dev/berth/runtime/seccomp"
)

// seccompProgram is the container's compiled filter, installed on the
// init's (or `berth enter`'s) locked thread and inherited by the exec.
type seccompProgram struct{ prog *seccomp.Program }

// seccompFilter compiles the container's profile, docker's default unless
// the spec gives one, for its capabilities: docker's profile allows some
// syscalls only to a container that holds the capability they need. Nil
// for a privileged or unconfined container, or a profile that filters
// nothing ("{}", as docker). Compiled at each start, in the init: a profile
// is a file the container was created with, never shared state.
func seccompFilter(sec *Security, caps capMask) (*seccompProgram, error) {
	if sec.Privileged || sec.SeccompUnconfined {
		return nil, nil
	}
	prog, err := seccomp.Filter(sec.SeccompProfile, caps.names())
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	if prog == nil {
		return nil, nil
	}
	return &seccompProgram{prog: prog}, nil
}

func (p *seccompProgram) install() error {
	if err := seccomp.Install(p.prog); err != nil {
		return fmt.Errorf("install the seccomp filter: %w", err)
	}
	return nil
}

// CheckSeccompProfile reports what is wrong with a profile in docker's JSON
// format, before a container is created with it.
func CheckSeccompProfile(profile []byte) error {
	_, err := seccomp.Filter(profile, maskOf(defaultCaps()).names())
	return err
}
