package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The devices a container may use, as docker gives them: a default-deny
// device cgroup with a short allowlist, the host devices the spec maps
// (devices:) and its own rules (device_cgroup_rules:); a privileged
// container gets every device. Without these rules a root process of the
// container could mknod the host's disks and terminals and open them.
//
// This file says which devices (the rules, the nodes to make);
// devices_cgroup_linux.go enforces the rules, on cgroup v1 and v2. The
// rules are in the OCI form, in docker's order, and mean what the cgroup v1
// devices controller makes of them when written one by one.

// Device numbers as the kernel has them: 12 bits of major, 20 of minor.
const (
	maxMajor = 1<<12 - 1
	maxMinor = 1<<20 - 1
)

// devRule is a rule of the device cgroup; major or minor -1 is any.
func devRule(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Major: &major, Minor: &minor, Access: access}
}

// dockerDefaultRules are the rules of moby's default spec
// (daemon/pkg/oci/defaults.go, DefaultLinuxSpec): deny everything, allow
// zero, null, urandom, random, tty and console, deny fuse. The user's rules
// follow them.
func dockerDefaultRules() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{
		devRule(false, "a", -1, -1, "rwm"),
		devRule(true, "c", 1, 5, "rwm"),
		devRule(true, "c", 1, 3, "rwm"),
		devRule(true, "c", 1, 9, "rwm"),
		devRule(true, "c", 1, 8, "rwm"),
		devRule(true, "c", 5, 0, "rwm"),
		devRule(true, "c", 5, 1, "rwm"),
		devRule(false, "c", 10, 229, "rwm"),
	}
}

// runcAllowedRules are the rules runc appends after the spec's own
// (libcontainer/specconv AllowedDevices): mknod of any character or block
// device (open stays refused), null, random, full, tty, zero, urandom, the
// terminals of /dev/pts and its ptmx, and /dev/net/tun. A rule whose
// device node the spec maps at the same path (devices: …:/dev/null) is
// left out, as runc leaves it out.
func runcAllowedRules(mapped map[string]bool) []specs.LinuxDeviceCgroup {
	rules := []specs.LinuxDeviceCgroup{
		devRule(true, "c", -1, -1, "m"),
		devRule(true, "b", -1, -1, "m"),
	}
	for _, d := range []struct {
		path         string
		major, minor int64
	}{
		{"/dev/null", 1, 3}, {"/dev/random", 1, 8}, {"/dev/full", 1, 7},
		{"/dev/tty", 5, 0}, {"/dev/zero", 1, 5}, {"/dev/urandom", 1, 9},
	} {
		if !mapped[d.path] {
			rules = append(rules, devRule(true, "c", d.major, d.minor, "rwm"))
		}
	}
	return append(rules,
		devRule(true, "c", 136, -1, "rwm"),
		devRule(true, "c", 5, 2, "rwm"),
		devRule(true, "c", 10, 200, "rwm"),
	)
}

// allowAllRules are a privileged container's: every device, as docker's
// --privileged.
func allowAllRules() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{devRule(true, "a", -1, -1, "rwm")}
}

// deviceRules are the rules of the container's device cgroup, in docker's
// order: its defaults, the spec's devices with their permissions, the
// spec's device_cgroup_rules, runc's additions. It stats the host's
// devices.
func deviceRules(sec Security) ([]specs.LinuxDeviceCgroup, error) {
	if err := sec.validateDevices(); err != nil {
		return nil, err
	}
	if sec.Privileged {
		return allowAllRules(), nil
	}
	rules := dockerDefaultRules()
	mapped := map[string]bool{}
	for _, d := range sec.Devices {
		nodes, err := d.nodes()
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			rules = append(rules, n.rule(d.permissions()))
			mapped[n.path] = true
		}
	}
	for _, r := range sec.DeviceCgroupRules {
		rule, err := parseDeviceRule(r)
		if err != nil {
			return nil, err
		}
		rules = append(rules, rule)
	}
	return append(rules, runcAllowedRules(mapped)...), nil
}

// validateDevices checks devices and device_cgroup_rules without looking
// at the host: paths, permissions, the rules' syntax.
func (s Security) validateDevices() error {
	for _, d := range s.Devices {
		if d.HostPath == "" || !filepath.IsAbs(d.HostPath) {
			return fmt.Errorf("devices: %q: the host path must be absolute", d.HostPath)
		}
		if c := d.ContainerPath; c != "" && (!filepath.IsAbs(c) || filepath.Clean(c) == "/") {
			return fmt.Errorf("devices: %s: the container path %q must be absolute, and not /", d.HostPath, c)
		}
		if !validAccess(d.permissions(), false) {
			return fmt.Errorf("devices: %s: permissions %q are not one or more of r, w and m", d.HostPath, d.Permissions)
		}
	}
	for _, r := range s.DeviceCgroupRules {
		if _, err := parseDeviceRule(r); err != nil {
			return err
		}
	}
	return nil
}

// permissions are the cgroup access the device is given: docker's "rwm"
// when the spec says nothing.
func (d Device) permissions() string {
	if d.Permissions == "" {
		return "rwm"
	}
	return d.Permissions
}

// validAccess tells whether access is one to three of r, w and m; dup
// allows a letter twice, as docker's rule syntax does ([rwm]{1,3}).
func validAccess(access string, dup bool) bool {
	if len(access) == 0 || len(access) > 3 {
		return false
	}
	for i, c := range access {
		if !strings.ContainsRune("rwm", c) || (!dup && strings.ContainsRune(access[:i], c)) {
			return false
		}
	}
	return true
}

// parseDeviceRule reads a rule of device_cgroup_rules, in the syntax of the
// cgroup v1 files and docker's --device-cgroup-rule: "TYPE MAJOR:MINOR
// ACCESS", type a, b or c, numbers or *, access of r, w and m.
func parseDeviceRule(rule string) (specs.LinuxDeviceCgroup, error) {
	bad := func(why string) (specs.LinuxDeviceCgroup, error) {
		return specs.LinuxDeviceCgroup{}, fmt.Errorf("device_cgroup_rules: %q: %s", rule, why)
	}
	f := strings.Split(rule, " ")
	if len(f) != 3 {
		return bad(`not a rule: write TYPE MAJOR:MINOR ACCESS, as "c 1:3 rwm"`)
	}
	typ, nums, access := f[0], f[1], f[2]
	if typ != "a" && typ != "b" && typ != "c" {
		return bad("the type must be a (all), b (block) or c (char)")
	}
	majorText, minorText, ok := strings.Cut(nums, ":")
	if !ok {
		return bad(`not a rule: write TYPE MAJOR:MINOR ACCESS, as "c 1:3 rwm"`)
	}
	major, err := deviceNumber(majorText, maxMajor)
	if err != nil {
		return bad("major " + err.Error())
	}
	minor, err := deviceNumber(minorText, maxMinor)
	if err != nil {
		return bad("minor " + err.Error())
	}
	if !validAccess(access, true) {
		return bad("the access must be one or more of r, w and m")
	}
	// The kernel takes any "a" rule for "a *:* rwm", every device: one
	// that looks narrower would give more than it says.
	if typ == "a" && (major != -1 || minor != -1 || !isRWM(access)) {
		return bad(`type a applies to every device and every access: write "a *:* rwm"`)
	}
	return devRule(true, typ, major, minor, access), nil
}

// isRWM tells whether access has all of r, w and m.
func isRWM(access string) bool {
	return strings.Contains(access, "r") && strings.Contains(access, "w") && strings.Contains(access, "m")
}

// deviceNumber reads a major or minor number of a rule: -1 for *.
func deviceNumber(s string, limit int64) (int64, error) {
	if s == "*" {
		return -1, nil
	}
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number or *", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > limit {
		return 0, fmt.Errorf("%s is above the kernel's %d", s, limit)
	}
	return n, nil
}

// deviceNode is a device node made in the container.
type deviceNode struct {
	path     string // in the container
	hostPath string // the host's node, bound where mknod is refused
	block    bool
	major    uint32
	minor    uint32
	perm     uint32 // permission bits, the host node's
	uid, gid uint32
}

// rule allows the node's device with access.
func (n deviceNode) rule(access string) specs.LinuxDeviceCgroup {
	typ := "c"
	if n.block {
		typ = "b"
	}
	return devRule(true, typ, int64(n.major), int64(n.minor), access)
}

// errNotADevice: the path is no character or block device node.
var errNotADevice = errors.New("not a device node")

// hostDeviceNode reads the host's device node at hostPath, to be made at
// path in the container. A symlink is not followed: it is not a device.
func hostDeviceNode(hostPath, path string) (deviceNode, error) {
	var st unix.Stat_t
	if err := unix.Lstat(hostPath, &st); err != nil {
		return deviceNode{}, fmt.Errorf("lstat: %w", err)
	}
	n := deviceNode{
		path: path, hostPath: hostPath,
		major: unix.Major(st.Rdev), minor: unix.Minor(st.Rdev),
		perm: st.Mode &^ unix.S_IFMT, uid: st.Uid, gid: st.Gid,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
	case unix.S_IFBLK:
		n.block = true
	default:
		return deviceNode{}, errNotADevice
	}
	return n, nil
}

// nodes reads the host's device, or every device under the host's
// directory (devices: /dev/snd), as docker's DevicesFromPath: a symlink
// given as the host path is followed, the ones in a directory are not.
func (d Device) nodes() ([]deviceNode, error) {
	host := d.HostPath
	path := d.ContainerPath
	if path == "" {
		path = host
	}
	path = filepath.Clean(path)
	if resolved, err := filepath.EvalSymlinks(host); err == nil {
		host = resolved
	}
	n, err := hostDeviceNode(host, path)
	if err == nil {
		return []deviceNode{n}, nil
	}
	if !errors.Is(err, errNotADevice) {
		return nil, fmt.Errorf("devices: %s: %w", d.HostPath, err)
	}
	var nodes []deviceNode
	if fi, err := os.Stat(host); err == nil && fi.IsDir() {
		err := filepath.WalkDir(host, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(host, p)
			if n, err := hostDeviceNode(p, filepath.Join(path, rel)); err == nil {
				nodes = append(nodes, n)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("devices: %s: %w", d.HostPath, err)
		}
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("devices: %s is not a device node, nor a directory that holds any", d.HostPath)
	}
	return nodes, nil
}

// hostDevices lists every device node of the host's /dev, for a
// privileged container, skipping what runc's and containerd's HostDevices
// skip: the pts, shm, fd and mqueue folders (the container has its own),
// LXC's and udev's private folders, and the console. /dev/ptmx stays the
// container's link to its own devpts instance, as in runc.
func hostDevices(dir string) ([]deviceNode, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("privileged: list host devices: %w", err)
	}
	var nodes []deviceNode
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				continue
			}
			sub, err := hostDevices(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile (a device unplugged, a namespace's folder)
			} else if err != nil {
				return nil, err
			}
			nodes = append(nodes, sub...)
			continue
		}
		if e.Name() == "console" || p == "/dev/ptmx" {
			continue
		}
		n, err := hostDeviceNode(p, p)
		if errors.Is(err, errNotADevice) || errors.Is(err, unix.ENOENT) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("privileged: host device %s: %w", p, err)
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// containerDevices lists the device nodes made in the container beyond
// populateDev's: every host device when privileged, then the spec's
// devices (a privileged container skips a mapping onto its own host path,
// which it already has, as docker).
func containerDevices(sec *Security) ([]deviceNode, error) {
	var nodes []deviceNode
	if sec.Privileged {
		all, err := hostDevices("/dev")
		if err != nil {
			return nil, err
		}
		nodes = all
	}
	for _, d := range sec.Devices {
		if sec.Privileged && (d.ContainerPath == "" || filepath.Clean(d.ContainerPath) == filepath.Clean(d.HostPath)) {
			continue
		}
		ns, err := d.nodes()
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, ns...)
	}
	return nodes, nil
}

// makeDevices makes, once populateDev has made docker's /dev, the device
// nodes of sec: a privileged container's host devices, the spec's devices.
// It runs in the init before pivot_root, where the host's /dev is still in
// view.
func (r *rootfs) makeDevices(sec *Security) error {
	if err := sec.validateDevices(); err != nil {
		return err
	}
	nodes, err := containerDevices(sec)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if err := r.makeDevice(n); err != nil {
			return err
		}
	}
	return nil
}

// makeDevice makes one node, with the host node's numbers, mode and owner,
// resolved inside the root. What is at its path (one of populateDev's
// nodes, a file of the image) gives way; a directory does not.
func (r *rootfs) makeDevice(n deviceNode) error {
	dir, err := pathrs.MkdirAllHandle(r.fd, filepath.Dir(n.path), 0o755)
	if err != nil {
		return fmt.Errorf("create device %s: %w", n.path, err)
	}
	defer dir.Close()
	dfd, name := int(dir.Fd()), filepath.Base(n.path)
	if err := unix.Unlinkat(dfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("create device %s: unlinkat: %w", n.path, err)
	}
	mode := n.perm | unix.S_IFCHR
	if n.block {
		mode = n.perm | unix.S_IFBLK
	}
	err = unix.Mknodat(dfd, name, mode, int(unix.Mkdev(n.major, n.minor)))
	if errors.Is(err, unix.EPERM) {
		// A user namespace (or a host that forbids mknod): bind the host's
		// node instead, as runc does.
		if err := bindDeviceNode(dfd, name, n.hostPath); err != nil {
			return fmt.Errorf("create device %s: %w", n.path, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("create device %s: mknod: %w", n.path, err)
	}
	// mknod honours the umask: set the host's bits, and its owner.
	if err := unix.Fchmodat(dfd, name, n.perm, 0); err != nil {
		return fmt.Errorf("create device %s: chmod: %w", n.path, err)
	}
	if err := unix.Fchownat(dfd, name, int(n.uid), int(n.gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("create device %s: chown: %w", n.path, err)
	}
	return nil
}

// bindDeviceNode binds the host's node source on a new empty file name in
// directory dfd.
func bindDeviceNode(dfd int, name, source string) error {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("mknod: %w; openat: %w", unix.EPERM, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if err := unix.Mount(source, procFd(f), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mknod: %w; bind host device %s: mount: %w", unix.EPERM, source, err)
	}
	return nil
}
