//go:build linux

package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime/image/imagetest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// linkTestName returns a fresh interface name: bt-l and 8 hex digits.
func linkTestName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "bt-l" + hex.EncodeToString(b)
}

// linkTestDir returns a folder for namespaces. Its cleanup (which runs after
// the namespaces' own, and before t.TempDir's) unmounts the private self
// bind mount that NewNamespace puts on it where the temp dir's mount is
// shared.
func linkTestDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "netns")
	t.Cleanup(func() { linkUnmountAll(t, dir) })
	return dir
}

// linkUnmountAll unmounts every mount stacked at path.
func linkUnmountAll(t *testing.T, path string) {
	t.Helper()
	for range 16 {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				t.Errorf("umount %s: %v", path, err)
			}
			return
		}
	}
}

// linkTestNS makes a namespace in a folder of its own, deleted at cleanup.
func linkTestNS(t *testing.T) string {
	t.Helper()
	path := filepath.Join(linkTestDir(t), linkTestName(t))
	if err := NewNamespace(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DeleteNamespace(path); err != nil {
			t.Error(err)
		}
	})
	return path
}

// linkMountedAt reports whether anything is mounted at path in our mount
// namespace.
func linkMountedAt(t *testing.T, path string) bool {
	t.Helper()
	mounts, err := linkMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.point == path {
			return true
		}
	}
	return false
}

// linkInode returns the inode of a namespace file.
func linkInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// linkTasksIn lists the threads of any process on the host that are in the
// network namespace with inode ino.
func linkTasksIn(t *testing.T, ino uint64) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/[0-9]*/task/[0-9]*/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("net:[%d]", ino)
	var in []string
	for _, p := range tasks {
		if l, err := os.Readlink(p); err == nil && l == want {
			in = append(in, p)
		}
	}
	return in
}

// linkInNS runs fn on a thread that has entered the namespace at nsPath.
func linkInNS(t *testing.T, nsPath string, fn func() error) error {
	t.Helper()
	return linkOnOwnThread(func() error {
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		orig, err := unix.Open(self, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(orig)
		ns, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(ns)
		if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
			return err
		}
		fnErr := fn()
		return errors.Join(fnErr, unix.Setns(orig, unix.CLONE_NEWNET))
	})
}

// linkHandle opens a netlink handle inside the namespace at nsPath.
func linkHandle(t *testing.T, nsPath string) *netlink.Handle {
	t.Helper()
	ns, err := linkNetnsHandle(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := linkHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// linkPrefix parses a prefix or fails the test.
func linkPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// linkWait polls cond until it holds or 10 seconds have passed.
func linkWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNewNamespaceRoundTrip(t *testing.T) {
	imagetest.NeedRoot(t)
	dir := linkTestDir(t)
	path := filepath.Join(dir, linkTestName(t))

	before, err := linkThreadNetns()
	if err != nil {
		t.Fatal(err)
	}
	if err := NewNamespace(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteNamespace(path) })
	if after, err := linkThreadNetns(); err != nil || after != before {
		t.Errorf("the caller's thread changed namespace: %v -> %v (%v)", before, after, err)
	}

	ino := linkInode(t, path)
	if host := linkInode(t, "/proc/self/ns/net"); ino == host {
		t.Fatalf("namespace at %s is the host's (inode %d)", path, ino)
	}
	if !linkMountedAt(t, path) {
		t.Fatalf("nothing mounted at %s", path)
	}
	// Kept alive by the mount alone: no thread of any process is in it.
	if in := linkTasksIn(t, ino); len(in) > 0 {
		t.Errorf("threads in the new namespace: %v", in)
	}
	lo, err := linkHandle(t, path).LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo is down")
	}
	addrs, err := Addresses(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(addrs); got != "map[lo:[127.0.0.1/8]]" {
		t.Errorf("addresses = %s, want map[lo:[127.0.0.1/8]]", got)
	}

	if err := DeleteNamespace(path); err != nil {
		t.Fatal(err)
	}
	if linkMountedAt(t, path) {
		t.Errorf("%s still mounted after DeleteNamespace", path)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there after DeleteNamespace: %v", path, err)
	}
	if err := DeleteNamespace(path); err != nil {
		t.Errorf("second DeleteNamespace: %v", err)
	}
	if _, err := Addresses(path); err == nil {
		t.Errorf("Addresses of a deleted namespace: no error")
	}
}

func TestNewNamespaceReuse(t *testing.T) {
	imagetest.NeedRoot(t)
	path := linkTestNS(t)
	ino := linkInode(t, path)
	h := linkHandle(t, path)
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetDown(lo); err != nil {
		t.Fatal(err)
	}

	if err := NewNamespace(path); err != nil {
		t.Fatalf("second NewNamespace: %v", err)
	}
	if got := linkInode(t, path); got != ino {
		t.Errorf("second NewNamespace made a new namespace: inode %d, was %d", got, ino)
	}
	if lo, err = h.LinkByName("lo"); err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo not brought up again on reuse (%v)", err)
	}

	// A crash between creating the file and mounting leaves a plain file.
	dir := filepath.Dir(path)
	left := filepath.Join(dir, linkTestName(t))
	if err := os.WriteFile(left, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteNamespace(left) })
	if err := NewNamespace(left); err != nil {
		t.Fatalf("NewNamespace over a leftover file: %v", err)
	}
	if !linkMountedAt(t, left) || linkInode(t, left) == linkInode(t, "/proc/self/ns/net") {
		t.Errorf("no new namespace mounted over the leftover file")
	}

	// Another kind of namespace in the way is refused and left alone.
	uts := filepath.Join(dir, linkTestName(t))
	if err := os.WriteFile(uts, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("/proc/self/ns/uts", uts, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { linkUnmountAll(t, uts) })
	if err := NewNamespace(uts); !errors.Is(err, ErrNotNetns) {
		t.Errorf("NewNamespace over a uts namespace: %v, want ErrNotNetns", err)
	}
	if !linkMountedAt(t, uts) {
		t.Errorf("the uts namespace mount was removed")
	}
	if _, err := Addresses(uts); !errors.Is(err, ErrNotNetns) {
		t.Errorf("Addresses of a uts namespace: %v, want ErrNotNetns", err)
	}
}

func TestNewNamespaceConcurrent(t *testing.T) {
	imagetest.NeedRoot(t)
	dir := linkTestDir(t)
	paths := make([]string, 8)
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i := range paths {
		paths[i] = filepath.Join(dir, linkTestName(t))
		t.Cleanup(func() {
			if err := DeleteNamespace(paths[i]); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() { errs[i] = NewNamespace(paths[i]) })
	}
	wg.Wait()
	seen := map[uint64]bool{linkInode(t, "/proc/self/ns/net"): true}
	for i, p := range paths {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		ino := linkInode(t, p)
		if seen[ino] {
			t.Errorf("%s: inode %d seen twice", p, ino)
		}
		seen[ino] = true
		if in := linkTasksIn(t, ino); len(in) > 0 {
			t.Errorf("%s: threads left in it: %v", p, in)
		}
	}
}

// TestNewNamespaceNoPropagation puts the namespace folder on a shared mount
// with a peer, as / is shared under systemd: the namespace's mount must not
// show up in the peer.
func TestNewNamespaceNoPropagation(t *testing.T) {
	imagetest.NeedRoot(t)
	tmp := t.TempDir()
	base, peer := filepath.Join(tmp, "base"), filepath.Join(tmp, "peer")
	for _, d := range []string{base, peer} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Cleanups run last-registered first: submounts before their parents.
	t.Cleanup(func() { linkUnmountAll(t, base) })
	if err := unix.Mount(base, base, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", base, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { linkUnmountAll(t, peer) })
	if err := unix.Mount(base, peer, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	// The setup works: a mount under base shows up in peer.
	probe := filepath.Join(base, "probe")
	if err := os.Mkdir(probe, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bt-lprobe", probe, "tmpfs", 0, "size=4k"); err != nil {
		t.Fatal(err)
	}
	seenInPeer := linkMountedAt(t, filepath.Join(peer, "probe"))
	linkUnmountAll(t, probe)
	linkUnmountAll(t, filepath.Join(peer, "probe"))
	if !seenInPeer {
		t.Fatal("test setup: a mount under the shared folder did not propagate to its peer")
	}

	nsDir := filepath.Join(base, "netns")
	t.Cleanup(func() {
		linkUnmountAll(t, filepath.Join(peer, "netns"))
		linkUnmountAll(t, nsDir)
	})
	path := filepath.Join(nsDir, linkTestName(t))
	if err := NewNamespace(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteNamespace(path) })
	if !linkMountedAt(t, path) {
		t.Fatalf("nothing mounted at %s", path)
	}
	if p := filepath.Join(peer, "netns", filepath.Base(path)); linkMountedAt(t, p) {
		t.Errorf("the namespace mount propagated to %s", p)
	}
	if err := DeleteNamespace(path); err != nil {
		t.Fatal(err)
	}
	if linkMountedAt(t, path) {
		t.Errorf("%s still mounted after DeleteNamespace", path)
	}
}

// TestDeleteNamespaceDetachesCopies: a mount namespace cloned while the
// namespace existed holds a copy of its mount; DeleteNamespace's unlink
// must detach that copy too, or the network namespace would live on.
func TestDeleteNamespaceDetachesCopies(t *testing.T) {
	imagetest.NeedRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("util-linux unshare is needed: ", err)
	}
	path := linkTestNS(t)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	mountinfo := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/mountinfo"
	hasCopy := func() bool {
		b, err := os.ReadFile(mountinfo)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(b), " "+path+" ")
	}
	// unshare(1) execs sleep only once its mount namespace is made.
	linkWait(t, "sleep to start", func() bool {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
		return strings.TrimSpace(string(b)) == "sleep"
	})
	if !hasCopy() {
		t.Fatalf("the cloned mount namespace has no copy of %s", path)
	}
	if err := DeleteNamespace(path); err != nil {
		t.Fatal(err)
	}
	if hasCopy() {
		t.Errorf("the cloned mount namespace still holds %s after DeleteNamespace", path)
	}
}
