package runtime

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// capNames are the kernel's capabilities by number, as docker names them
// (capabilities(7)); a kernel newer than this list may know more, which
// only a privileged container gets.
var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
	"CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// capByName returns the number of a capability given as docker takes it:
// any case, with or without "CAP_".
func capByName(name string) (uintptr, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	i := slices.Index(capNames[:], n)
	return uintptr(i), i >= 0
}

// capName is the name of capability c ("CAP_38" past the list).
func capName(c uintptr) string {
	if int(c) < len(capNames) {
		return capNames[c]
	}
	return fmt.Sprintf("CAP_%d", c)
}

// capList parses docker's names, with "ALL" reported apart; an unknown name
// is an error in docker's words.
func capList(field string, names []string) (caps []uintptr, all bool, err error) {
	for _, name := range names {
		if strings.EqualFold(strings.TrimSpace(name), "ALL") {
			all = true
			continue
		}
		c, ok := capByName(name)
		if !ok {
			return nil, false, fmt.Errorf("%s: unknown capability: %q", field, name)
		}
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, all, nil
}

// capabilities is the set the container's root keeps, by docker's rules
// (moby's oci/caps.TweakCapabilities): privileged or cap_add ALL give every
// capability the kernel has (less cap_drop for the latter); cap_drop ALL
// keeps only cap_add; otherwise docker's default set less cap_drop plus
// cap_add.
func (s Security) capabilities() (capMask, error) {
	add, addAll, err := capList("cap_add", s.CapAdd)
	if err != nil {
		return capMask{}, err
	}
	drop, dropAll, err := capList("cap_drop", s.CapDrop)
	if err != nil {
		return capMask{}, err
	}
	for _, c := range add {
		if !inBoundingSet(c) {
			return capMask{}, fmt.Errorf("cap_add: %s: berth itself does not hold it on this host, so no container of its can", capName(c))
		}
	}
	var keep []uintptr
	switch {
	case s.Privileged:
		keep = allCaps()
	case addAll:
		for _, c := range allCaps() {
			if !slices.Contains(drop, c) {
				keep = append(keep, c)
			}
		}
	case dropAll:
		keep = add
	default:
		for _, c := range defaultCaps() {
			if !slices.Contains(drop, c) {
				keep = append(keep, c)
			}
		}
		keep = append(keep, add...)
	}
	return maskOf(keep), nil
}

// allCaps is every capability berth itself may give: those of its own
// bounding set that the kernel knows. A host (or a sandbox) that withholds
// one from berth withholds it from its containers too; asking capset for it
// would fail the start.
func allCaps() []uintptr {
	var all []uintptr
	for c := uintptr(0); c <= lastCap(); c++ {
		if inBoundingSet(c) {
			all = append(all, c)
		}
	}
	return all
}

// inBoundingSet reports whether capability c is in this thread's bounding
// set. prctl, not /proc/self/status: `berth enter` asks from inside the
// container's mount namespace, whose /proc has no "self" for it.
func inBoundingSet(c uintptr) bool {
	r, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, c, 0, 0, 0)
	return err == nil && r == 1
}

// names lists the capabilities of m, as docker names them.
func (m capMask) names() []string {
	var out []string
	for c := uintptr(0); c < 64; c++ {
		if m.has(c) {
			out = append(out, capName(c))
		}
	}
	return out
}
