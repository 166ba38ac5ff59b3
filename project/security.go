package project

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/runtime"
)

// hostLSM says which Linux security modules the host enforces: berth applies
// neither AppArmor nor SELinux profiles, so an option naming one can only be
// accepted where the host has none to apply.
type hostLSM struct{ apparmor, selinux bool }

func detectLSM() hostLSM {
	var h hostLSM
	if data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil {
		h.apparmor = strings.TrimSpace(string(data)) == "Y"
	}
	if _, err := os.Stat("/sys/fs/selinux/enforce"); err == nil {
		h.selinux = true
	}
	return h
}

// serviceSecurity turns the service's security keys into the runtime's
// Security, by docker's rules. What berth cannot honour is an error naming
// the field, never a warning followed by a weaker container; the warnings
// are for options that change nothing on this host.
func serviceSecurity(p *types.Project, s types.ServiceConfig, lsm hostLSM) (sec runtime.Security, warnings []string, err error) {
	sec = runtime.Security{
		Privileged:        s.Privileged,
		CapAdd:            s.CapAdd,
		CapDrop:           s.CapDrop,
		DeviceCgroupRules: s.DeviceCgroupRules,
		GroupAdd:          s.GroupAdd,
	}
	switch s.UserNSMode {
	case "", "host":
		// berth makes no user namespace: the host's is what it uses.
	default:
		return sec, nil, fmt.Errorf("userns_mode: %q is not supported: berth runs containers in the host's user namespace (only \"host\")", s.UserNSMode)
	}
	for _, opt := range s.SecurityOpt {
		w, err := securityOpt(p, opt, &sec, lsm)
		if err != nil {
			return sec, nil, fmt.Errorf("security_opt: %w", err)
		}
		if w != "" {
			warnings = append(warnings, w)
		}
	}
	for i, d := range s.Devices {
		if d.Source == "" {
			return sec, nil, fmt.Errorf("devices[%d]: no host device", i)
		}
		sec.Devices = append(sec.Devices, runtime.Device{HostPath: d.Source, ContainerPath: d.Target, Permissions: d.Permissions})
	}
	if len(s.Sysctls) > 0 {
		sec.Sysctls = map[string]string{}
		for k, v := range s.Sysctls {
			sec.Sysctls[k] = v
		}
	}
	for _, name := range sortedKeys(s.Ulimits) {
		u := s.Ulimits[name]
		if u == nil {
			continue
		}
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		sec.Ulimits = append(sec.Ulimits, runtime.Ulimit{Name: name, Soft: soft, Hard: hard})
	}
	if s.OomScoreAdj != 0 {
		v := int(s.OomScoreAdj)
		sec.OOMScoreAdj = &v
	}
	return sec, warnings, nil
}

// securityOpt applies one security_opt, as docker compose and the docker
// daemon read them: key=value or key:value, and a bare no-new-privileges.
func securityOpt(p *types.Project, opt string, sec *runtime.Security, lsm hostLSM) (warning string, err error) {
	if opt == "no-new-privileges" {
		sec.NoNewPrivileges = true
		return "", nil
	}
	key, value, ok := strings.Cut(opt, "=")
	if !ok {
		if key, value, ok = strings.Cut(opt, ":"); !ok {
			return "", fmt.Errorf("invalid option %q: want key=value", opt)
		}
	}
	switch key {
	case "no-new-privileges":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return "", fmt.Errorf("invalid option %q: no-new-privileges takes true or false", opt)
		}
		sec.NoNewPrivileges = b
	case "seccomp":
		if value == "unconfined" {
			sec.SeccompUnconfined = true
			return "", nil
		}
		// As docker compose: a path relative to the project directory,
		// read now, so the container keeps the profile it was created with.
		path := p.RelativePath(value)
		data, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("opening seccomp profile (%s) failed: %w", value, err)
		}
		var b bytes.Buffer
		if err := json.Compact(&b, data); err != nil {
			return "", fmt.Errorf("seccomp profile %s: %w", path, err)
		}
		if err := runtime.CheckSeccompProfile(b.Bytes()); err != nil {
			return "", fmt.Errorf("seccomp profile %s: %w", path, err)
		}
		sec.SeccompProfile = b.Bytes()
	case "systempaths":
		if value != "unconfined" {
			return "", fmt.Errorf("invalid option %q: systempaths takes unconfined", opt)
		}
		sec.SystemPathsUnconfined = true
	case "apparmor":
		if lsm.apparmor && value != "unconfined" {
			return "", fmt.Errorf("%q: berth does not apply AppArmor profiles, and this host enforces AppArmor", opt)
		}
		if !lsm.apparmor {
			return fmt.Sprintf("security_opt %q: this host has no AppArmor; ignored", opt), nil
		}
	case "label":
		if lsm.selinux && value != "disable" {
			return "", fmt.Errorf("%q: berth does not apply SELinux labels, and this host enforces SELinux", opt)
		}
		if !lsm.selinux {
			return fmt.Sprintf("security_opt %q: this host has no SELinux; ignored", opt), nil
		}
	default:
		return "", fmt.Errorf("%q is not supported (no-new-privileges, seccomp, systempaths, apparmor, label)", opt)
	}
	return "", nil
}

// checkServices refuses, before anything is pulled, built or made, what the
// named services (all when names is empty) ask that berth cannot honour:
// isolation keys it does not implement, security keys it or the kernel
// would refuse, a logging driver it lacks; each as one line naming the
// file, the service and the field. It warns of the security options that
// change nothing on this host. Loading does not check these: `ps`, `down`
// and `config` must work on any file compose-go accepts.
func (e *Engine) checkServices(p *types.Project, names []string) error {
	if len(names) == 0 {
		names = sortedKeys(p.Services)
	}
	lsm := detectLSM()
	for _, name := range names {
		s, ok := p.Services[name]
		if !ok {
			continue
		}
		if key := isolationKey(s); key != "" {
			return inFile(p, serviceError(name, fmt.Errorf("%s: not supported by berth yet, and ignoring it would change what the container is isolated from", key)))
		}
		sec, warnings, err := serviceSecurity(p, s, lsm)
		if err == nil {
			err = sec.Validate(s.NetworkMode == "host")
		}
		if err == nil {
			_, err = logConfig(s)
		}
		if err != nil {
			return inFile(p, serviceError(name, err))
		}
		for _, w := range warnings {
			e.warn(fmt.Sprintf("service %q: %s", name, w))
		}
	}
	return nil
}

// isolationKey is the first key of s that decides what a container is shut
// off from and that berth does not implement yet ("" when none is set):
// ignoring one would give another container than the one asked for, so it
// is an error, not a warning.
func isolationKey(s types.ServiceConfig) string {
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"pid", s.Pid != ""}, {"ipc", s.Ipc != ""}, {"uts", s.Uts != ""},
		{"cgroup", s.Cgroup != ""}, {"cgroup_parent", s.CgroupParent != ""},
		{"isolation", s.Isolation != ""}, {"runtime", s.Runtime != ""},
		{"storage_opt", len(s.StorageOpt) > 0}, {"credential_spec", s.CredentialSpec != nil},
		{"oom_kill_disable", s.OomKillDisable},
	} {
		if k.set {
			return k.name
		}
	}
	return ""
}
