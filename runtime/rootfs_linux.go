package runtime

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// This file builds the container's root filesystem, inside the init, in the
// container's own mount namespace: every mount made here vanishes with the
// namespace, so the host never has anything to unmount.

// emptyLowerDir is the overlay's single lower directory when the image has no
// layers: overlayfs needs at least one lower directory.
const emptyLowerDir = "lower"

// rootfs is the container's root while the init builds it, before pivot_root.
type rootfs struct {
	path string // Dir/rootfs, where the overlay is mounted
	// fd is an O_PATH handle on the overlay's root. Every target inside the
	// root is resolved from it with filepath-securejoin, so that no symlink
	// in the image can lead a mount or a mkdir out of the root.
	fd *os.File
}

// mountOverlay mounts the container's root: the image's layers read-only
// under the container's own upper directory, on Dir/rootfs.
func mountOverlay(layers []string, dir string) (*rootfs, error) {
	upper := filepath.Join(dir, upperDir)
	work := filepath.Join(dir, workDir)
	target := filepath.Join(dir, rootfsDir)

	// overlayfs takes the lower directories highest first; Spec.Layers is
	// lowest first, as the image lists them.
	lowers := make([]string, 0, len(layers))
	for i := len(layers) - 1; i >= 0; i-- {
		lowers = append(lowers, layers[i])
	}
	if len(lowers) == 0 {
		empty := filepath.Join(dir, emptyLowerDir)
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return nil, fmt.Errorf("create overlay lower dir: %w", err)
		}
		lowers = []string{empty}
	}
	for _, l := range lowers {
		if !filepath.IsAbs(l) {
			return nil, fmt.Errorf("layer directory %q is not an absolute path", l)
		}
		// ':' separates lower directories and ',' options; overlayfs has an
		// escape for them, but no layer store of ours produces such names.
		if strings.ContainsAny(l, ":,") {
			return nil, fmt.Errorf("layer directory %q: overlayfs cannot take a path with ':' or ','", l)
		}
	}
	if err := makeUpperDir(upper, lowers[0]); err != nil {
		return nil, err
	}
	for _, d := range []string{work, target} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create overlay dirs: %w", err)
		}
	}

	data := overlayData(lowers, upper, work)
	if len(data) >= unix.Getpagesize() {
		// mount(2) copies at most one page of options. Relative paths from
		// the directory that holds both the layers and the container (what
		// docker and runc do) keep dozens of layers within it. The cwd is
		// the init's own and is changed again before the exec.
		base := commonDir(append(append([]string{}, lowers...), upper, work))
		rel := func(p string) string { r, _ := filepath.Rel(base, p); return r }
		rlowers := make([]string, len(lowers))
		for i, l := range lowers {
			rlowers[i] = rel(l)
		}
		data = overlayData(rlowers, rel(upper), rel(work))
		if len(data) >= unix.Getpagesize() {
			return nil, fmt.Errorf("mount overlay on %s: %d layers need %d bytes of mount options, more than the kernel's %d",
				target, len(layers), len(data), unix.Getpagesize())
		}
		if err := unix.Chdir(base); err != nil {
			return nil, fmt.Errorf("mount overlay on %s: chdir %s: %w", target, base, err)
		}
	}
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		return nil, fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	fd, err := os.OpenFile(target, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open container root: %w", err)
	}
	return &rootfs{path: target, fd: fd}, nil
}

func overlayData(lowers []string, upper, work string) string {
	return "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
}

// makeUpperDir creates the overlay's upper directory with the mode and owner
// of the image's root: the merged root directory is the upper directory
// itself, so a 0700 upper would make "/" unreadable to a non-root user.
func makeUpperDir(upper, topLayer string) error {
	var st unix.Stat_t
	if err := unix.Stat(topLayer, &st); err != nil {
		return fmt.Errorf("layer directory %s: stat: %w", topLayer, err)
	}
	if err := os.Mkdir(upper, 0o755); errors.Is(err, os.ErrExist) {
		return nil // a restart keeps the container's files
	} else if err != nil {
		return fmt.Errorf("create overlay upper dir: %w", err)
	}
	if err := unix.Chown(upper, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("create overlay upper dir: chown %s: %w", upper, err)
	}
	if err := unix.Chmod(upper, st.Mode&0o7777); err != nil {
		return fmt.Errorf("create overlay upper dir: chmod %s: %w", upper, err)
	}
	return nil
}

// commonDir is the deepest directory that holds every one of paths.
func commonDir(paths []string) string {
	base := filepath.Dir(paths[0])
	for _, p := range paths[1:] {
		for base != "/" && !strings.HasPrefix(p, base+"/") {
			base = filepath.Dir(base)
		}
	}
	return base
}

// procFd is the path through which the kernel reaches what a handle is. A
// mount onto it lands on the very inode that was resolved safely, not on a
// path that a symlink swapped in later could redirect: runc's fix for
// CVE-2021-30465.
func procFd(h *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(h.Fd())) }

// dirTarget returns a handle on directory target inside the root, creating it
// and its parents (0755, root-owned) if missing. Symlinks resolve as if the
// root were "/", so `/evil -> /tmp/hostdir` makes the root's /tmp/hostdir.
func (r *rootfs) dirTarget(target string) (*os.File, error) {
	h, err := pathrs.MkdirAllHandle(r.fd, target, 0o755)
	if err != nil {
		return nil, fmt.Errorf("create mount target %s: %w", target, err)
	}
	return h, nil
}

// fileTarget returns a handle on file target inside the root, creating an
// empty file (and its parent directories) if nothing is there.
func (r *rootfs) fileTarget(target string) (*os.File, error) {
	h, err := pathrs.OpenatInRoot(r.fd, target)
	if err == nil {
		return h, nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("open mount target %s: %w", target, err)
	}
	parent, err := pathrs.MkdirAllHandle(r.fd, filepath.Dir(target), 0o755)
	if err != nil {
		return nil, fmt.Errorf("create mount target %s: %w", target, err)
	}
	defer parent.Close()
	// O_NOFOLLOW: a dangling symlink left there is refused, not followed.
	fd, err := unix.Openat(int(parent.Fd()), filepath.Base(target),
		unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create mount target %s: openat: %w", target, err)
	}
	return os.NewFile(uintptr(fd), target), nil
}

// mountDir mounts source (a filesystem type's name or a bind source) on the
// directory target inside the root.
func (r *rootfs) mountDir(source, target, fstype string, flags uintptr, data string) error {
	h, err := r.dirTarget(target)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := unix.Mount(source, procFd(h), fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", source, target, err)
	}
	return nil
}

// bindFile bind-mounts the host file source on the file target inside the root.
func (r *rootfs) bindFile(source, target string) error {
	h, err := r.fileTarget(target)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := unix.Mount(source, procFd(h), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", source, target, err)
	}
	return nil
}

// mountKernelFS mounts /proc, /dev with its device nodes, /dev/pts, /dev/shm,
// /dev/mqueue and /sys with docker's options: /sys is read-only unless the
// container is privileged.
func (r *rootfs) mountKernelFS(privileged bool) error {
	const (
		nosuid = unix.MS_NOSUID
		nodev  = unix.MS_NODEV
		noexec = unix.MS_NOEXEC
	)
	if err := r.mountDir("proc", "/proc", "proc", nosuid|nodev|noexec, ""); err != nil {
		return err
	}
	// Device nodes on /dev need no nodev; strictatime as docker's.
	if err := r.mountDir("tmpfs", "/dev", "tmpfs", nosuid|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return err
	}
	if err := r.populateDev(); err != nil {
		return err
	}
	pts := "newinstance,ptmxmode=0666,mode=0620"
	if r.hasGroup(5) {
		pts += ",gid=5" // tty: what login programs expect to own terminals
	}
	if err := r.mountDir("devpts", "/dev/pts", "devpts", nosuid|noexec, pts); err != nil {
		return err
	}
	if err := r.mountDir("shm", "/dev/shm", "tmpfs", nosuid|nodev|noexec, "mode=1777,size=65536k"); err != nil {
		return err
	}
	if err := r.mountDir("mqueue", "/dev/mqueue", "mqueue", nosuid|nodev|noexec, ""); err != nil {
		return err
	}
	sysFlags := uintptr(nosuid | nodev | noexec | unix.MS_RDONLY)
	if privileged {
		sysFlags &^= unix.MS_RDONLY
	}
	return r.mountDir("sysfs", "/sys", "sysfs", sysFlags, "")
}

// populateDev makes the device nodes and links of docker's /dev on the fresh
// tmpfs. There is no /dev/console: containers get no terminal; nor
// /dev/core, which docker has not either. The spec's devices come after
// (makeDevices).
func (r *rootfs) populateDev() error {
	dev, err := pathrs.OpenatInRoot(r.fd, "/dev")
	if err != nil {
		return fmt.Errorf("open /dev: %w", err)
	}
	defer dev.Close()
	dfd := int(dev.Fd())
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		err := unix.Mknodat(dfd, d.name, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor)))
		if errors.Is(err, unix.EPERM) {
			// A devices cgroup (or a host that forbids mknod) says no: bind
			// the host's node instead, as runc does.
			err = bindHostDevice(dfd, d.name)
		} else if err == nil {
			// mknod honours the umask; the nodes are for everyone.
			err = unix.Fchmodat(dfd, d.name, 0o666, 0)
		}
		if err != nil {
			return fmt.Errorf("create /dev/%s: %w", d.name, err)
		}
	}
	for _, l := range [][2]string{
		{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
	} {
		if err := unix.Symlinkat(l[0], dfd, l[1]); err != nil {
			return fmt.Errorf("create /dev/%s: symlink: %w", l[1], err)
		}
	}
	return nil
}

func bindHostDevice(dfd int, name string) error {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return fmt.Errorf("mknod: %w; openat: %w", unix.EPERM, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if err := unix.Mount("/dev/"+name, procFd(f), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mknod: %w; bind host device: mount: %w", unix.EPERM, err)
	}
	return nil
}

// hasGroup says whether the image's /etc/group has a group of that id.
func (r *rootfs) hasGroup(gid int) bool {
	f, err := r.openFile("/etc/group")
	if err != nil || f == nil {
		return false
	}
	defer f.Close()
	groups, err := user.ParseGroupFilter(f, func(g user.Group) bool { return g.Gid == gid })
	return err == nil && len(groups) > 0
}

// openFile opens a regular file of the image for reading, resolved inside
// the root; nil without error when there is none.
func (r *rootfs) openFile(name string) (*os.File, error) {
	h, err := pathrs.OpenatInRoot(r.fd, name)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, fmt.Errorf("%s: fstat: %w", name, err)
	}
	// A FIFO or a device in an image would block or worse on open.
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	return pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
}

// mountEtcFiles writes the container's hostname, hosts and resolv.conf into
// its directory and binds them on the root's /etc, as docker does: the image
// keeps its own files underneath, untouched.
func (r *rootfs) mountEtcFiles(spec *Spec, dir string) error {
	var hosts bytes.Buffer
	if spec.HostNetwork {
		// The host's network, the host's names, as docker does.
		host, _ := os.ReadFile("/etc/hosts")
		hosts.Write(host)
	} else {
		hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	}
	for _, h := range spec.Hosts {
		hosts.WriteString(h + "\n")
	}
	files := []struct {
		name    string
		content []byte
	}{
		{hostnameFile, []byte(spec.Hostname + "\n")},
		{hostsFile, hosts.Bytes()},
		{resolvFile, resolvConf(spec)},
	}
	for _, f := range files {
		src := filepath.Join(dir, f.name)
		if err := os.WriteFile(src, f.content, 0o644); err != nil {
			return fmt.Errorf("write /etc/%s: %w", f.name, err)
		}
		if err := r.bindFile(src, "/etc/"+f.name); err != nil {
			return err
		}
	}
	return nil
}

// resolvConf is the host's resolver configuration as docker passes it on:
// loopback nameservers point at the host's own resolver (systemd-resolved,
// dnsmasq), which the container cannot reach, so they go; with none left,
// systemd-resolved's upstream list is tried, then Google's public servers.
func resolvConf(spec *Spec) []byte {
	switch {
	case len(spec.DNS) > 0:
		var b bytes.Buffer
		for _, ns := range spec.DNS {
			b.WriteString("nameserver " + ns + "\n")
		}
		if len(spec.DNSSearch) > 0 {
			b.WriteString("search " + strings.Join(spec.DNSSearch, " ") + "\n")
		}
		if len(spec.DNSOptions) > 0 {
			b.WriteString("options " + strings.Join(spec.DNSOptions, " ") + "\n")
		}
		return b.Bytes()
	case spec.HostNetwork:
		// The host's own resolvers, loopback ones included: the container
		// shares the host's loopback.
		data, _ := os.ReadFile("/etc/resolv.conf")
		return data
	}
	for _, path := range []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"} {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if out, ok := filterResolvConf(data); ok {
			return out
		}
	}
	data, _ := os.ReadFile("/etc/resolv.conf")
	out, _ := filterResolvConf(data)
	return append(out, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"...)
}

// filterResolvConf drops loopback nameservers and reports whether any
// nameserver is left.
func filterResolvConf(data []byte) ([]byte, bool) {
	var out bytes.Buffer
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			addr, _, _ := strings.Cut(f[1], "%") // an IPv6 zone
			if ip := net.ParseIP(addr); ip != nil && ip.IsLoopback() {
				continue
			}
			found = true
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes(), found
}

// mountSpec mounts the Spec's volumes, bind mounts and tmpfs, in order, so a
// later mount can sit inside an earlier one.
func (r *rootfs) mountSpec(mounts []Mount) error {
	for _, m := range mounts {
		if !filepath.IsAbs(m.Target) {
			return fmt.Errorf("mount target %q is not an absolute path", m.Target)
		}
		target := filepath.Clean(m.Target)
		var err error
		switch m.Type {
		case MountBind:
			err = r.mountBind(m, target)
		case MountTmpfs:
			err = r.mountTmpfs(m, target)
		default:
			err = fmt.Errorf("mount on %s: unknown mount type %q", target, m.Type)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *rootfs) mountBind(m Mount, target string) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Source, target, err)
	}
	var h *os.File
	if st.IsDir() {
		if m.CopyUp {
			if err := r.copyUp(m.Source, target); err != nil {
				return fmt.Errorf("copy %s of the image into volume %s: %w", target, m.Source, err)
			}
		}
		h, err = r.dirTarget(target)
	} else {
		h, err = r.fileTarget(target)
	}
	if err != nil {
		return err
	}
	defer h.Close()
	// MS_REC: mounts below the source come along, as with docker's binds.
	if err := unix.Mount(m.Source, procFd(h), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Source, target, err)
	}
	if !m.ReadOnly {
		return nil
	}
	// h is the directory under the new mount; the mount is what the path
	// resolves to now.
	mh, err := pathrs.OpenatInRoot(r.fd, target)
	if err != nil {
		return fmt.Errorf("make %s read-only: %w", target, err)
	}
	defer mh.Close()
	if err := readonly(mh, true); err != nil {
		return fmt.Errorf("make %s read-only: %w", target, err)
	}
	return nil
}

func (r *rootfs) mountTmpfs(m Mount, target string) error {
	mode := m.TmpfsMode
	if mode == 0 {
		mode = 0o1777
	}
	data := "mode=" + strconv.FormatUint(uint64(mode), 8)
	if m.TmpfsSize > 0 {
		data += ",size=" + strconv.FormatInt(m.TmpfsSize, 10)
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if m.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	return r.mountDir("tmpfs", target, "tmpfs", flags, data)
}

// readonly makes the mount at h read-only, with the mounts below it when
// recursive. mount_setattr changes that one flag and keeps nosuid, nodev and
// noexec; the old MS_REMOUNT way must repeat them or it clears them.
func readonly(h *os.File, recursive bool) error {
	return readonlyAt(int(h.Fd()), "", procFd(h), recursive)
}

func readonlyAt(dirfd int, path, display string, recursive bool) error {
	flags := uint(0)
	if path == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	err := unix.MountSetattr(dirfd, path, flags, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
	if !errors.Is(err, unix.ENOSYS) {
		if err != nil {
			return fmt.Errorf("mount_setattr: %w", err)
		}
		return nil
	}
	// Before Linux 5.12: remount the top mount only, keeping its flags.
	var st unix.Statfs_t
	if err := unix.Statfs(display, &st); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
		unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	if err := unix.Mount("", display, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keep, ""); err != nil {
		return fmt.Errorf("remount: %w", err)
	}
	return nil
}

// pivotRoot makes the container's root the root of the mount namespace and
// drops the host's, with runc's trick: pivot_root(".", ".") stacks the old
// root on top of the new one, so no directory for the old root is needed in
// the image (which may be read-only), and a lazy unmount of "." removes it.
// Propagation was made private first, so the unmount reaches no host mount.
func pivotRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: umount2: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// maskPaths hides what the kernel shows in /proc and /sys about the host
// (kernel memory, keys, timers, firmware), as docker's default masked paths:
// /dev/null over files, an empty read-only tmpfs over directories. Then
// docker's read-only paths become read-only: /proc/sys and friends would let
// a root process tune the host's kernel. It runs after pivot_root, on the
// container's own fresh /proc and /sys, which no image content can shadow.
func maskPaths() error {
	for _, p := range []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	} {
		err := unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		if errors.Is(err, unix.ENOTDIR) {
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("mask %s: mount: %w", p, err)
		}
	}
	for _, p := range []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"} {
		err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, "")
		if errors.Is(err, unix.ENOENT) {
			continue
		} else if err != nil {
			return fmt.Errorf("make %s read-only: mount: %w", p, err)
		}
		if err := readonlyAt(unix.AT_FDCWD, p, p, true); err != nil {
			return fmt.Errorf("make %s read-only: %w", p, err)
		}
	}
	return nil
}
