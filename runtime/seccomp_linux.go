package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/runtime/seccomp"
)

// A container's seccomp filter is compiled once, by Create, into
// seccomp.bpf in its directory: every start, exec and healthcheck then
// installs those bytes, and no container start pays for the compile (a
// fresh process spends about a millisecond building docker's profile).

// seccompProgram is the container's compiled filter, installed on the
// init's (or `berth enter`'s) locked thread and inherited by the exec.
type seccompProgram struct{ prog *seccomp.Program }

// compileSeccomp compiles the container's profile, docker's default unless
// the spec gives one, for its capabilities: docker's profile allows some
// syscalls only to a container that holds the capability they need. Nil
// for a privileged or unconfined container, or for a profile that filters
// nothing ("{}", as docker).
func compileSeccomp(sec *Security) (*seccomp.Program, error) {
	if sec.Privileged || sec.SeccompUnconfined {
		return nil, nil
	}
	caps, err := sec.capabilities()
	if err != nil {
		return nil, err
	}
	prog, err := seccomp.Filter(sec.SeccompProfile, caps.names())
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	return prog, nil
}

// writeSeccomp compiles the filter into dir, when the container has one.
func writeSeccomp(dir string, sec *Security) error {
	prog, err := compileSeccomp(sec)
	if err != nil || prog == nil {
		return err
	}
	data, err := prog.MarshalBinary()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, seccompFile), data, 0o600)
}

// loadSeccomp is the container's filter, read from its directory on the
// host (before the process leaves the host's mount namespace); compiled
// now for a container that a berth without seccomp.bpf created.
func loadSeccomp(dir string, sec *Security) (*seccompProgram, error) {
	if sec.Privileged || sec.SeccompUnconfined {
		return nil, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, seccompFile))
	if err == nil {
		var prog seccomp.Program
		if err := prog.UnmarshalBinary(data); err != nil {
			return nil, fmt.Errorf("%s: %w", seccompFile, err)
		}
		return &seccompProgram{prog: &prog}, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the seccomp filter: %w", err)
	}
	prog, err := compileSeccomp(sec)
	if err != nil || prog == nil {
		return nil, err
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
