package runtime

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	units "github.com/docker/go-units"
	"golang.org/x/sys/unix"
)

// Validate refuses, before anything is created, what the container's init
// would refuse or could only do by weakening the container or the host. The
// messages name the compose field.
func (s Security) Validate(hostNetwork bool) error {
	if _, err := s.capabilities(); err != nil {
		return err
	}
	if err := s.validateDevices(); err != nil {
		return err
	}
	for _, d := range s.Devices {
		if _, err := d.nodes(); err != nil {
			return err
		}
	}
	for _, key := range slices.Sorted(maps.Keys(s.Sysctls)) {
		if err := validSysctl(key, s.Sysctls[key], hostNetwork); err != nil {
			return err
		}
	}
	for _, u := range s.Ulimits {
		if err := u.validate(); err != nil {
			return err
		}
	}
	if s.OOMScoreAdj != nil {
		if err := validOOMScoreAdj(*s.OOMScoreAdj); err != nil {
			return err
		}
	}
	for _, g := range s.GroupAdd {
		if strings.TrimSpace(g) == "" {
			return errors.New("group_add: an empty group name")
		}
	}
	return nil
}

// docker's namespaced sysctls (moby opts.ValidateSysctl): these and the
// net.* and fs.mqueue.* families are per network or IPC namespace; any
// other would change the host's kernel for everyone.
var (
	sysctlIPC      = []string{"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
	sysctlPrefixes = []string{"net.", "fs.mqueue."}
)

// validSysctl checks one sysctl by docker's allowlist and runc's rules. The
// value may hold no "+", "=" or newline: CVE-2022-0811 smuggled a second
// sysctl through a value that a later parser split on them.
func validSysctl(key, value string, hostNetwork bool) error {
	field := fmt.Sprintf("sysctls.%s", key)
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, ".") || strings.HasPrefix(key, "/") ||
		strings.IndexFunc(key, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/", r))
		}) >= 0 {
		return fmt.Errorf("%s: not a sysctl name", field)
	}
	name := strings.ReplaceAll(key, "/", ".")
	if !slices.Contains(sysctlIPC, name) && !slices.ContainsFunc(sysctlPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
		return fmt.Errorf("%s: sysctl %q is not allowed: only namespaced ones are (net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*)", field, key)
	}
	if hostNetwork && strings.HasPrefix(name, "net.") {
		return fmt.Errorf("%s: sysctl %q is not allowed with network_mode host: it would change the host's network", field, key)
	}
	if strings.ContainsAny(value, "+=\n\x00") {
		return fmt.Errorf("%s: value %q may not contain '+', '=' or a newline", field, value)
	}
	return nil
}

// sysctlPath is the file of a sysctl under /proc/sys. A key with "/" is a
// path already (net/ipv4/conf/eth0.100/forwarding, for names with dots).
func sysctlPath(key string) string {
	if strings.Contains(key, "/") {
		return "/proc/sys/" + key
	}
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

// setSysctls writes the sysctls through the container's own /proc, from the
// init's thread, which is in the container's network and IPC namespaces:
// the kernel picks the namespace of the writer's files.
func setSysctls(sysctls map[string]string) error {
	for _, key := range slices.Sorted(maps.Keys(sysctls)) {
		f, err := os.OpenFile(sysctlPath(key), os.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sysctls.%s: this kernel has no such sysctl in the container's namespaces", key)
		}
		if err == nil {
			_, err = f.WriteString(sysctls[key])
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return fmt.Errorf("sysctls.%s: set %q: %w", key, sysctls[key], err)
		}
	}
	return nil
}

// rlimit is the resource of a ulimit by docker's name.
func (u Ulimit) rlimit() (int, error) {
	r, err := (&units.Ulimit{Name: u.Name}).GetRlimit()
	if err != nil {
		return 0, fmt.Errorf("ulimits.%s: unknown limit (core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)", u.Name)
	}
	return r.Type, nil
}

// value is the limit as setrlimit takes it: -1 is unlimited.
func ulimitValue(v int64) uint64 {
	if v < 0 {
		return unix.RLIM_INFINITY
	}
	return uint64(v)
}

// validate refuses a limit berth could only set by raising its own hard
// limit, which needs CAP_SYS_RESOURCE; berth never raises a limit past the
// hard one it holds, so the user's file must ask for less.
func (u Ulimit) validate() error {
	res, err := u.rlimit()
	if err != nil {
		return err
	}
	soft, hard := ulimitValue(u.Soft), ulimitValue(u.Hard)
	if soft > hard {
		return fmt.Errorf("ulimits.%s: soft limit %s is above the hard limit %s", u.Name, rlimitText(soft), rlimitText(hard))
	}
	var own unix.Rlimit
	if err := unix.Getrlimit(res, &own); err != nil {
		return fmt.Errorf("ulimits.%s: getrlimit: %w", u.Name, err)
	}
	if hard > own.Max && !hasCap(unix.CAP_SYS_RESOURCE) {
		return fmt.Errorf("ulimits.%s: hard limit %s is above berth's own hard limit %s, and raising it needs CAP_SYS_RESOURCE: ask for at most %s",
			u.Name, rlimitText(hard), rlimitText(own.Max), rlimitText(own.Max))
	}
	return nil
}

func rlimitText(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// setUlimits sets the process's resource limits; the exec keeps them.
// syscall.Setrlimit, not unix's: for RLIMIT_NOFILE it also forgets the
// soft limit the Go runtime saved at start-up, which syscall.Exec would
// otherwise put back.
func setUlimits(ulimits []Ulimit) error {
	for _, u := range ulimits {
		res, err := u.rlimit()
		if err != nil {
			return err
		}
		lim := syscall.Rlimit{Cur: ulimitValue(u.Soft), Max: ulimitValue(u.Hard)}
		if err := syscall.Setrlimit(res, &lim); err != nil {
			return fmt.Errorf("ulimits.%s: setrlimit %s:%s: %w", u.Name, rlimitText(lim.Cur), rlimitText(lim.Max), err)
		}
	}
	return nil
}

// validOOMScoreAdj refuses what the kernel refuses, and a value below
// berth's own, which needs CAP_SYS_RESOURCE.
func validOOMScoreAdj(v int) error {
	if v < -1000 || v > 1000 {
		return fmt.Errorf("oom_score_adj: %d is out of range: from -1000 to 1000", v)
	}
	own, err := ownOOMScoreAdj()
	if err == nil && v < own && !hasCap(unix.CAP_SYS_RESOURCE) {
		return fmt.Errorf("oom_score_adj: %d is below berth's own %d, and lowering it needs CAP_SYS_RESOURCE", v, own)
	}
	return nil
}

func ownOOMScoreAdj() (int, error) {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// setOOMScoreAdj sets the process's oom_score_adj, which the exec keeps.
func setOOMScoreAdj(v int) error {
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(v)), 0); err != nil {
		return fmt.Errorf("oom_score_adj: set %d: %w", v, err)
	}
	return nil
}

// hasCap reports whether this thread has capability c in its effective
// set.
func hasCap(c uintptr) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}
