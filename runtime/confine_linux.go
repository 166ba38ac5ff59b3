package runtime

import (
	"github.com/moby/sys/user"
)

// confine takes the container's process from the init's full powers down to
// what the container may do, on the init's locked thread, in runc's order:
// the seccomp filter while CAP_SYS_ADMIN is still held (unless
// no_new_privs lets an unprivileged process install it, in which case as
// late as possible: late, just before the exec, so that few syscalls of
// berth's own run under the user's filter), the bounding set, the user,
// the capabilities, no_new_privs.
//
// filter is the container's seccomp filter (nil: none), read by the caller
// while the host's files were in view (loadSeccomp).
func confine(sec *Security, usr *user.ExecUser, filter *seccompProgram) (late func() error, err error) {
	caps, err := sec.capabilities()
	if err != nil {
		return nil, err
	}
	late = func() error { return nil }
	if filter != nil {
		if sec.NoNewPrivileges {
			late = filter.install
		} else if err := filter.install(); err != nil {
			return nil, err
		}
	}
	if err := dropBoundingSet(caps); err != nil {
		return nil, err
	}
	if err := switchUser(usr); err != nil {
		return nil, err
	}
	if usr.Uid != 0 {
		// As docker: a user other than root keeps its capabilities in the
		// bounding set only, for set-user-ID and file-capability programs.
		caps = capMask{}
	}
	if err := setCaps(caps); err != nil {
		return nil, err
	}
	if sec.NoNewPrivileges {
		if err := noNewPrivs(); err != nil {
			return nil, err
		}
	}
	return late, nil
}
