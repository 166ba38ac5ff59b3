package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install loads the filter for the calling thread, which from then on and
// through execve runs every syscall through it. A nil program installs
// nothing (the profile turned seccomp off).
//
// The filter applies to this one thread (no SECCOMP_FILTER_FLAG_TSYNC): the
// caller has locked the goroutine to its OS thread (runtime.LockOSThread)
// and execs the container's process from it, which ends the other threads.
// The kernel accepts a filter only from a thread that has set no_new_privs
// or holds CAP_SYS_ADMIN in its user namespace (EACCES otherwise): install
// after prctl(PR_SET_NO_NEW_PRIVS), or before dropping CAP_SYS_ADMIN as
// runc does when no_new_privs is off. Whatever the thread does between
// Install and execve goes through the filter too.
func Install(p *Program) error {
	if p == nil {
		return nil
	}
	if len(p.Instructions) == 0 || len(p.Instructions) > maxInstructions {
		return fmt.Errorf("install seccomp filter: %d instructions, want 1 to %d", len(p.Instructions), maxInstructions)
	}
	filter := make([]unix.SockFilter, len(p.Instructions))
	for i, ins := range p.Instructions {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}

	flags := p.Flags
	err := setModeFilter(flags, &prog)
	if errors.Is(err, unix.EINVAL) && flags&flagSpecAllow != 0 {
		// Before Linux 4.17 there is no SPEC_ALLOW: runc leaves it out
		// there, and the filter is the same without it.
		flags &^= flagSpecAllow
		err = setModeFilter(flags, &prog)
	}
	if errors.Is(err, unix.ENOSYS) && flags == 0 {
		// Before Linux 3.17 there is no seccomp(2), only prctl.
		err = unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0)
		if err != nil {
			err = fmt.Errorf("prctl PR_SET_SECCOMP: %w", err)
		}
	}
	runtime.KeepAlive(filter)
	if err != nil {
		return fmt.Errorf("install seccomp filter: %w", err)
	}
	return nil
}

func setModeFilter(flags uint, prog *unix.SockFprog) error {
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(prog)))
	if errno != 0 {
		return fmt.Errorf("seccomp SECCOMP_SET_MODE_FILTER: %w", errno)
	}
	return nil
}
