//go:build linux

package network

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrNotNetns reports a namespace path that holds something other than a
// network namespace: another kind of namespace, or some other mount.
var ErrNotNetns = errors.New("not a network namespace")

// NewNamespace creates a network namespace kept alive by a bind mount at path
// (the file is created), with lo up. Safe against a half-made one left by a
// crash: an existing mount at path is reused if it is a netns (and lo is
// brought up again), a plain file left before the mount is mounted over.
//
// The namespace is made on a goroutine of its own, locked to its thread:
// unshare(CLONE_NEWNET) there, bind-mount the thread's ns/net onto path, then
// setns back to the namespace the thread started in. The thread goes back to
// the Go scheduler only if it is provably back in that namespace; otherwise
// the goroutine ends still locked and the runtime ends the thread with it.
// We restore instead of always throwing the thread away because the runtime
// cannot end the main thread: a locked goroutine that exits there wedges it
// for good, and a wedged thread inside the new namespace would keep that
// namespace alive after DeleteNamespace.
//
// Where the mount holding path's folder is shared (systemd makes / shared),
// the folder is first made a private bind mount of itself, so that the netns
// mounts stay in this mount namespace instead of being copied into every peer
// and slave of / (service namespaces and the like): any copy that our unmount
// does not reach there (one made private since, or locked in a namespace of
// another user namespace) would keep the namespace alive. That folder mount is made once and stays, as /run/netns
// does for `ip netns` (which makes it shared, to push unmounts out; we keep
// them from going out at all): undoing it at each delete would push a fresh
// copy of the folder into every peer at the next create. Keep all namespaces
// in one folder (BERTH_ROOT/netns/<id>), not one folder per container.
func NewNamespace(path string) (err error) {
	path, err = linkNamespacePath(path)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	ok, err := linkIsNetns(path)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	if ok {
		if err := linkLoopbackUp(path); err != nil {
			return fmt.Errorf("network namespace %s: %w", path, err)
		}
		return nil
	}
	if err := linkPrivateDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			// The file was made here or is a leftover of a crash: either way
			// it is ours to drop.
			err = errors.Join(err, DeleteNamespace(path))
		}
	}()
	if err := linkOnOwnThread(func() error { return linkUnshareAndMount(path) }); err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	if err := linkLoopbackUp(path); err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	return nil
}

// DeleteNamespace unmounts (MNT_DETACH) and removes path; gone is success.
// Every mount stacked at path is unmounted (two racing creators could have
// stacked two). Removing the file also detaches copies of the mount that
// other mount namespaces took while it existed (a container's mount
// namespace cloned before its pivot_root, say): since Linux 3.18 unlinking a
// mount point that is busy only elsewhere detaches it everywhere. The
// namespace itself ends when its last mount, process and open file are gone.
func DeleteNamespace(path string) error {
	for range 64 {
		err := unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not (or no longer) a mount point
		}
		return fmt.Errorf("network namespace %s: umount: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	return nil
}

// linkNamespacePath makes path absolute with its folder created and free of
// symbolic links, as /proc/self/mountinfo spells mount points.
func linkNamespacePath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path, err
	}
	dir, name := filepath.Split(abs)
	if name == "" {
		return abs, fmt.Errorf("no file name in path")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return abs, err
	}
	dir, err = filepath.EvalSymlinks(dir)
	if err != nil {
		return abs, err
	}
	return filepath.Join(dir, name), nil
}

// linkUnshareAndMount runs on a locked thread (linkOnOwnThread): it moves the
// thread into a new network namespace, pins that namespace at path, and moves
// the thread back.
func linkUnshareAndMount(path string) error {
	self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	orig, err := unix.Open(self, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", self, err)
	}
	defer unix.Close(orig)
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
	}
	mountErr := unix.Mount(self, path, "", unix.MS_BIND, "")
	if mountErr != nil {
		mountErr = fmt.Errorf("bind-mount %s: %w", self, mountErr)
	}
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		return errors.Join(mountErr, fmt.Errorf("setns back to the original namespace: %w", err))
	}
	return mountErr
}

// linkOnOwnThread runs fn on a new goroutine locked to its OS thread, for
// work that must change the thread's network namespace for a while. The
// thread is handed back to the scheduler only if it ends in the namespace it
// started in; if not, the goroutine exits locked and the runtime ends the
// thread, so that no other goroutine ever runs in a namespace it did not ask
// for. The caller's own thread is never touched.
func linkOnOwnThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		before, err := linkThreadNetns()
		if err != nil {
			runtime.UnlockOSThread() // nothing changed yet
			errc <- err
			return
		}
		err = fn()
		if after, aerr := linkThreadNetns(); aerr == nil && after == before {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// linkThreadNetns identifies the network namespace of the calling thread.
func linkThreadNetns() ([2]uint64, error) {
	var st unix.Stat_t
	p := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	if err := unix.Stat(p, &st); err != nil {
		return [2]uint64{}, fmt.Errorf("stat %s: %w", p, err)
	}
	return [2]uint64{st.Dev, st.Ino}, nil
}

// linkIsNetns reports whether path is a network namespace: a mount of one
// (NewNamespace) or a process's /proc/PID/ns/net. A missing path or a plain
// file (a crash between create and mount) is false; any other mount there,
// or a namespace of another kind, is ErrNotNetns.
func linkIsNetns(path string) (bool, error) {
	// Following links is needed for /proc/PID/ns/net, a magic link; what it
	// opens is checked to be a network namespace below.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open: %w", err)
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return false, fmt.Errorf("fstatfs: %w", err)
	}
	if sfs.Type != unix.NSFS_MAGIC {
		mounts, err := linkMountinfo()
		if err != nil {
			return false, err
		}
		for _, m := range mounts {
			if m.point == path {
				return false, fmt.Errorf("a %s mount is in the way: %w", m.fstype, ErrNotNetns)
			}
		}
		return false, nil
	}
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return false, fmt.Errorf("ioctl(NS_GET_NSTYPE): %w", err)
	}
	if typ != unix.CLONE_NEWNET {
		return false, fmt.Errorf("namespace type %#x: %w", typ, ErrNotNetns)
	}
	return true, nil
}

// linkNetnsHandle opens the network namespace at path, refusing anything
// else (setns on a plain file would only say "invalid argument").
func linkNetnsHandle(path string) (netns.NsHandle, error) {
	ok, err := linkIsNetns(path)
	if err != nil {
		return netns.None(), fmt.Errorf("network namespace %s: %w", path, err)
	}
	if !ok {
		return netns.None(), fmt.Errorf("network namespace %s: %w", path, ErrNotNetns)
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return netns.None(), fmt.Errorf("network namespace %s: %w", path, err)
	}
	return ns, nil
}

// linkHandleAt opens a route netlink handle inside ns. A netlink socket
// belongs to the namespace it was made in, so netlink.NewHandleAt enters ns
// for a moment on a locked thread; it does so on a thread of its own here
// (linkOnOwnThread), never the caller's, and that thread is thrown away if
// it did not come back. The handle is then used from any goroutine.
func linkHandleAt(ns netns.NsHandle) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := linkOnOwnThread(func() error {
		var err error
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink handle in namespace: %w", err)
	}
	return h, nil
}

// linkLoopbackUp brings lo up in the namespace at path.
func linkLoopbackUp(path string) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := linkHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo: set up: %w", err)
	}
	return nil
}

// linkPrivateDir makes sure that mounts made in dir propagate nowhere: if
// the mount holding dir is shared, dir becomes a private bind mount of
// itself (or, if dir is that mount, it is made private). See NewNamespace.
func linkPrivateDir(dir string) error {
	mounts, err := linkMountinfo()
	if err != nil {
		return err
	}
	m := linkMountOf(mounts, dir)
	if m == nil || !m.shared {
		return nil
	}
	if m.point != dir {
		// MS_REC keeps whatever is already mounted below dir visible.
		if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mount %s onto itself: %w", dir, err)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s a private mount: %w", dir, err)
	}
	return nil
}

// linkMount is one line of /proc/self/mountinfo, the fields we use.
type linkMount struct {
	point  string // mount point, unescaped
	fstype string
	shared bool // has a shared:N peer group: mounts below it propagate
}

// linkMountinfo reads the calling thread's mount table.
func linkMountinfo() ([]linkMount, error) {
	const p = "/proc/thread-self/mountinfo"
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []linkMount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:2 - ext3 /dev/root rw
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		m := linkMount{point: linkUnescapeMountinfo(fields[4])}
		for i, f := range fields[6:] {
			if f == "-" {
				if j := 6 + i + 1; j < len(fields) {
					m.fstype = fields[j]
				}
				break
			}
			if strings.HasPrefix(f, "shared:") {
				m.shared = true
			}
		}
		mounts = append(mounts, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return mounts, nil
}

// linkMountOf returns the mount that holds path: the deepest mount point
// at or above it, the last one listed where several are stacked.
func linkMountOf(mounts []linkMount, path string) *linkMount {
	var best *linkMount
	for i := range mounts {
		m := &mounts[i]
		inside := m.point == path || m.point == "/" ||
			strings.HasPrefix(path, m.point+"/")
		if inside && (best == nil || len(m.point) >= len(best.point)) {
			best = m
		}
	}
	return best
}

// linkUnescapeMountinfo undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in a mountinfo path.
func linkUnescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
