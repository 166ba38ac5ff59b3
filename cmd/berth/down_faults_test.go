package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// Faults that down must get through: a full disk, an up killed early.
// Each test has its own state root and its own subnets in 10.213.208.0/21.

// faultCmd runs the berth under test in dir with root and pools.
func faultCmd(dir, root, pools string, args ...string) *exec.Cmd {
	cmd := exec.Command("berth", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BERTH_ROOT="+root, "NO_COLOR=1", "BERTH_IFPREFIX=bt-",
		"BERTH_ADDRESS_POOLS="+pools)
	return cmd
}

// faultRun runs berth and fails the test unless it succeeds.
func faultRun(t *testing.T, dir, root, pools string, args ...string) string {
	t.Helper()
	out, err := faultCmd(dir, root, pools, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// faultProject writes compose.yaml into a folder of its own.
func faultProject(t *testing.T, compose string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// bridgeOf is the bridge berth names for network under root: the prefix,
// "b", and a hash of the root and the name (project.Engine.bridgeName).
// Worked out here, not read from the store, since the tests check what
// down does when the store has lost its records.
func bridgeOf(root, name string) string {
	sum := sha256.Sum256([]byte(root + "\x00" + name))
	return ("bt-b" + hex.EncodeToString(sum[:]))[:15]
}

// linksOn lists a bridge and the interfaces plugged into it.
func linksOn(bridge string) []string {
	if _, err := net.InterfaceByName(bridge); err != nil {
		return nil
	}
	links := []string{bridge}
	all, _ := net.Interfaces()
	for _, l := range all {
		if master, _ := os.Readlink(filepath.Join("/sys/class/net", l.Name, "master")); filepath.Base(master) == bridge {
			links = append(links, l.Name)
		}
	}
	return links
}

// checkDown fails if anything of project is left on the host: container
// directories, monitors, cgroups, the nftables table, the bridges of
// networks (and what is plugged into them) and their FORWARD rules, or
// network records.
func checkDown(t *testing.T, root, project string, links []string, networks ...string) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(root, "containers"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), project+"-") {
			t.Errorf("container %s left", e.Name())
		}
	}
	if pids := monitorsUnder(filepath.Join(root, "containers", project+"-")); len(pids) > 0 {
		t.Errorf("monitors left running: pids %v", pids)
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/berth/" + project + "-*")
	more, _ := filepath.Glob("/sys/fs/cgroup/berth/" + project + "-*")
	if left := append(cgroups, more...); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	if tables, err := network.Tables("berth_" + project); err != nil {
		t.Error(err)
	} else if len(tables) > 0 {
		t.Errorf("nftables tables left: %v", tables)
	}
	for _, l := range links {
		if _, err := net.InterfaceByName(l); err == nil {
			t.Errorf("interface %s left", l)
		}
	}
	rules, err := network.ForwardBridges("bt-b")
	if err != nil {
		t.Error(err)
	}
	for _, n := range networks {
		if _, err := os.Stat(filepath.Join(root, "networks", n)); err == nil {
			t.Errorf("network record %s left", n)
		}
		for _, b := range rules {
			if b == bridgeOf(root, n) {
				t.Errorf("FORWARD rules of %s (network %s) left", b, n)
			}
		}
	}
}

// mountTmpfs mounts a tmpfs of size on dir (made if missing), unmounted at
// cleanup (after the cleanups registered later, which take the projects
// down).
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bt-downfull", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+size); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// fillDisk writes a file in dir until its file system is full, and
// returns how to free the space again.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "bt-fill")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 64<<10)
	for n := len(block); n > 0; n /= 2 {
		for {
			if _, err := f.Write(block[:n]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", path, err)
				}
				break
			}
		}
	}
	return func() { os.Remove(path) }
}

// TestDownFullDisk: with the disk of the state root full, `down -v`
// removes every container, network, rule and volume of the project and
// exits 0; what it could not record, it says on stderr: here the address
// a container held on another project's network, which stays. Once there
// is room, the next down records it.
//
// Removing containers frees room on the disk it fills, so the network
// store is a disk of its own here, which the project's down frees nothing
// on: it has no network of its own. (Its event log, appended to, may or
// may not have room left in its last page: not checked.)
func TestDownFullDisk(t *testing.T) {
	imagetest.NeedRoot(t)
	root := filepath.Join(t.TempDir(), "root")
	mountTmpfs(t, root, "32m")
	mountTmpfs(t, filepath.Join(root, "networks"), "256k")
	const pools = "10.213.208.0/24:26"
	other := faultProject(t, `name: fullother
services:
  keeper:
    image: bb
    command: [sleep, "300"]
    networks: [shared]
networks:
  shared:
    name: fullshared
`)
	guest := faultProject(t, `name: fullguest
services:
  app:
    image: bb
    command: [sleep, "300"]
    networks: [shared]
networks:
  shared:
    name: fullshared
    external: true
`)
	dir := faultProject(t, `name: fullp
services:
  web:
    image: bb
    command: [httpd, -f, -p, "80", -h, /]
    ports: ["127.0.0.1::80"]
    networks: [front]
  db:
    image: bb
    command: [sleep, "300"]
    volumes: ["data:/data", "/scratch"]
    networks: [front, back]
networks:
  front: {}
  back: {}
volumes:
  data: {}
`)
	if err := os.WriteFile(filepath.Join(dir, "bb.tar"), imagetest.RootfsTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	faultRun(t, dir, root, pools, "image", "import", "bb.tar", "bb")
	t.Cleanup(func() {
		for _, d := range []string{dir, guest, other} {
			faultCmd(d, root, pools, "down", "-v", "-t", "0").Run()
		}
	})
	for _, d := range []string{other, guest, dir} {
		faultRun(t, d, root, pools, "up", "-d")
	}
	var links []string
	for _, n := range []string{"fullp_front", "fullp_back"} {
		links = append(links, linksOn(bridgeOf(root, n))...)
	}
	if len(links) != 5 {
		t.Fatalf("the project's bridges and veths: %v, want 2 bridges and 3 veths", links)
	}
	var frees []func()
	for _, d := range []string{"networks", ""} {
		frees = append(frees, fillDisk(t, filepath.Join(root, d)))
	}

	down := func(dir string, args ...string) string {
		t.Helper()
		cmd := faultCmd(dir, root, pools, append([]string{"down", "-t", "1"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("down on a full disk: %v, want success\n%s", err, stderr.String())
		}
		return stderr.String()
	}
	out := down(guest)
	for _, want := range []string{
		"WARN could not record that container fullguest-app-1 left network fullshared (its address 10.213.208.",
		"no space left on device",
		fmt.Sprintf("WARN the project is down, but the disk holding %s is full: what is listed above is not recorded", root),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("down's output lacks %q:\n%s", want, out)
		}
	}
	checkDown(t, root, "fullguest", nil)
	leases := func() string {
		b, _ := os.ReadFile(filepath.Join(root, "networks", "fullshared", "leases.json"))
		return string(b)
	}
	if !strings.Contains(leases(), `"fullguest-app-1"`) {
		t.Fatalf("the unrecorded lease is recorded after all?\n%s", leases())
	}

	out = down(dir, "-v")
	for _, want := range []string{
		"Container fullp-db-1  Removed",
		"Network fullp_front  Removed",
		`Volume "fullp_data"  Removed`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("down -v's output lacks %q:\n%s", want, out)
		}
	}
	checkDown(t, root, "fullp", links, "fullp_front", "fullp_back")
	vols, _ := os.ReadDir(filepath.Join(root, "volumes"))
	for _, v := range vols {
		if !strings.HasPrefix(v.Name(), ".") {
			t.Errorf("volume %s left", v.Name())
		}
	}
	// The other project's network stays, with its container running.
	if ps := faultRun(t, other, root, pools, "ps"); !strings.Contains(ps, "fullother-keeper-1") || !strings.Contains(ps, "running") {
		t.Errorf("the other project suffered:\n%s", ps)
	}

	// With room again, a down (without the file) writes what is missing.
	for _, free := range frees {
		free()
	}
	out = faultRun(t, t.TempDir(), root, pools, "-p", "fullguest", "down")
	if strings.Contains(out, "WARN") || strings.Contains(leases(), `"fullguest-app-1"`) {
		t.Errorf("second down: %s\nleases: %s", out, leases())
	}
	if !strings.Contains(leases(), `"fullother-keeper-1"`) {
		t.Errorf("the other project's lease is gone:\n%s", leases())
	}
}

// TestDownAfterUpKilled: `up -d` killed with SIGKILL at each early step
// (network recorded, address leased, table loaded, first container made),
// then `down`: nothing of the project may be left, whatever state the kill
// left. The kills chase the steps, so each may land a little later than
// aimed; the leftover that used to fool down, a lease of a container never
// created, is also made exactly, by hand.
func TestDownAfterUpKilled(t *testing.T) {
	imagetest.NeedRoot(t)
	const pools = "10.213.209.0/24:26"
	dir := faultProject(t, `name: killp
services:
  web:
    image: bb
    command: [httpd, -f, -p, "80", -h, /]
    ports: ["127.0.0.1::80"]
    networks: [front]
  db:
    image: bb
    command: [sleep, "300"]
    networks: [front, back]
networks:
  front: {}
  back: {}
`)
	root, err := filepath.Abs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bb.tar"), imagetest.RootfsTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	faultRun(t, dir, root, pools, "image", "import", "bb.tar", "bb")
	t.Cleanup(func() { faultCmd(dir, root, pools, "down", "-t", "0").Run() })
	nets := []string{"killp_front", "killp_back"}
	bridges := []string{bridgeOf(root, nets[0]), bridgeOf(root, nets[1])}

	leased := func() bool {
		for _, n := range nets {
			if b, err := os.ReadFile(filepath.Join(root, "networks", n, "leases.json")); err == nil && bytes.Contains(b, []byte(`"container"`)) {
				return true
			}
		}
		return false
	}
	steps := []struct {
		name    string
		reached func() bool
	}{
		{"network recorded", func() bool {
			_, err := os.Stat(filepath.Join(root, "networks", nets[0], "network.json"))
			return err == nil
		}},
		{"bridge made", func() bool { _, err := net.InterfaceByName(bridges[0]); return err == nil }},
		{"table loaded", func() bool { ts, _ := network.Tables("berth_killp"); return len(ts) > 0 }},
		{"address leased", leased},
		{"container made", func() bool {
			entries, _ := os.ReadDir(filepath.Join(root, "containers"))
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), "killp-") {
					return true
				}
			}
			return false
		}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			up := faultCmd(dir, root, pools, "up", "-d")
			if err := up.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for !step.reached() && time.Now().Before(deadline) {
				time.Sleep(100 * time.Microsecond)
			}
			up.Process.Signal(syscall.SIGKILL)
			up.Wait()
			faultRun(t, dir, root, pools, "down", "-t", "1")
			checkDown(t, root, "killp", bridges, nets...)
		})
	}

	// The exact leftover: the network, its bridge and the table up, and a
	// lease for killp-db-1, which was never created. Without the file,
	// too.
	t.Run("lease without container", func(t *testing.T) {
		faultRun(t, dir, root, pools, "up", "-d", "--no-start", "web")
		leaseOnly(t, root, nets[0], "killp-db-1", "db", "killp")
		if _, err := net.InterfaceByName(bridges[0]); err != nil {
			t.Fatalf("no bridge for %s: %v", nets[0], err)
		}
		faultRun(t, t.TempDir(), root, pools, "-p", "killp", "down", "-t", "1")
		checkDown(t, root, "killp", bridges, nets...)
	})

	// A lease of another project's container that is not there yet, while
	// that project holds its lock (an up of it, between the lease and the
	// create): the network stays, until that project lets go of it.
	t.Run("lease of a busy project", func(t *testing.T) {
		faultRun(t, dir, root, pools, "up", "-d", "--no-start", "web")
		store := leaseOnly(t, root, nets[0], "busy-app-1", "app", "busy")
		lock, err := os.OpenFile(filepath.Join(root, "locks", "busy"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		faultRun(t, dir, root, pools, "down", "-t", "1")
		if _, err := store.Network(nets[0]); err != nil {
			t.Fatalf("down removed a network another project is leasing on: %v", err)
		}
		if _, err := net.InterfaceByName(bridges[0]); err != nil {
			t.Fatalf("down removed the bridge of a network another project is leasing on: %v", err)
		}
		lock.Close()
		faultRun(t, dir, root, pools, "down", "-t", "1")
		checkDown(t, root, "killp", bridges, nets...)
	})
}

// leaseOnly leases an address on netName for a container that does not
// exist (what an up killed between the lease and the create leaves), and
// returns the store.
func leaseOnly(t *testing.T, root, netName, container, alias, project string) *network.Store {
	t.Helper()
	store, err := network.OpenStore(filepath.Join(root, "networks"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Lease(netName, container, netip.Addr{}, []string{alias}, project); err != nil {
		t.Fatal(err)
	}
	return store
}
