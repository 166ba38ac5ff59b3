package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// defaultCaps is docker's default capability set: what a container's root
// keeps. Everything else (SYS_ADMIN, NET_ADMIN, SYS_MODULE, SYS_PTRACE, …)
// would let it reach the host's kernel or other processes.
func defaultCaps() []uintptr {
	return []uintptr{
		unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FSETID, unix.CAP_FOWNER,
		unix.CAP_MKNOD, unix.CAP_NET_RAW, unix.CAP_SETGID, unix.CAP_SETUID,
		unix.CAP_SETFCAP, unix.CAP_SETPCAP, unix.CAP_NET_BIND_SERVICE,
		unix.CAP_SYS_CHROOT, unix.CAP_KILL, unix.CAP_AUDIT_WRITE,
	}
}

// capMask is a set of capabilities as the two 32-bit words of capset(2).
type capMask [2]uint32

func maskOf(caps []uintptr) capMask {
	var m capMask
	for _, c := range caps {
		m[c/32] |= 1 << (c % 32)
	}
	return m
}

func (m capMask) has(c uintptr) bool { return m[c/32]&(1<<(c%32)) != 0 }

// Capabilities belong to a thread, not to a process, in Linux. The init
// locks its goroutine to one thread for its whole life; every function here
// changes that thread only, and the execve made from it is what the
// container's process inherits.

// dropBoundingSet removes from the bounding set every capability not in
// keep: no execve, not even of a set-user-ID-root or file-capability binary,
// can give them back. It needs CAP_SETPCAP, so it comes before setuid.
func dropBoundingSet(keep capMask) error {
	last := lastCap()
	for c := uintptr(0); c <= last; c++ {
		if keep.has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: prctl PR_CAPBSET_DROP: %w", c, err)
		}
	}
	return nil
}

// lastCap is the highest capability the running kernel knows, which may be
// past the one this binary was built with.
func lastCap() uintptr {
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && n >= 0 && n < 64 {
			return uintptr(n)
		}
	}
	return unix.CAP_LAST_CAP
}

// setCaps sets the effective and permitted sets to caps and empties the
// inheritable and ambient sets: nothing is passed on to programs beyond what
// execve computes. For root, execve then grants the bounding set; for any
// other user, with no ambient capabilities, it grants nothing, as docker.
func setCaps(caps capMask) error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: prctl PR_CAP_AMBIENT: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: caps[0], Permitted: caps[0]},
		{Effective: caps[1], Permitted: caps[1]},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// noNewPrivs sets no_new_privs: from the exec on, set-user-ID bits and file
// capabilities grant nothing, so a process of the container can never gain
// more than it has.
func noNewPrivs() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_NO_NEW_PRIVS: %w", err)
	}
	return nil
}
