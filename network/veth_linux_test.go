package network

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime/image/imagetest"
	"github.com/vishvananda/netlink"
)

// linkAttach attaches nsPath and detaches at cleanup.
func linkAttach(t *testing.T, nsPath string, a Attachment) {
	t.Helper()
	t.Cleanup(func() {
		if err := Detach(a.HostName); err != nil {
			t.Error(err)
		}
	})
	if err := Attach(nsPath, a); err != nil {
		t.Fatal(err)
	}
}

// linkPing pings addr once from inside the namespace at nsPath with
// busybox, trying for up to 10 seconds (the first packet waits for ARP).
func linkPing(t *testing.T, nsPath string, addr netip.Addr) error {
	t.Helper()
	var (
		out []byte
		err error
	)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err = exec.Command("nsenter", "--net="+nsPath, imagetest.BusyboxPath,
			"ping", "-c1", "-W2", addr.String()).CombinedOutput()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("ping %s from %s: %v: %s", addr, nsPath, err, out)
}

// linkDefaultRoutes lists the default routes inside a namespace.
func linkDefaultRoutes(t *testing.T, nsPath string) []netlink.Route {
	t.Helper()
	routes, err := linkHandle(t, nsPath).RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var def []netlink.Route
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			if ones, _ := r.Dst.Mask.Size(); r.Dst == nil || ones == 0 {
				def = append(def, r)
			}
		}
	}
	return def
}

func TestAttachPing(t *testing.T) {
	imagetest.NeedRoot(t)
	imagetest.NeedBusybox(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Fatal("util-linux nsenter is needed: ", err)
	}
	br := linkTestBridge(t, linkPrefix(t, "10.213.17.1/24"), 0)
	gw := netip.MustParseAddr("10.213.17.1")
	ns1, ns2 := linkTestNS(t), linkTestNS(t)
	a1 := Attachment{Bridge: br, HostName: linkTestName(t), IfName: "eth0",
		Addr: linkPrefix(t, "10.213.17.2/24"), Gateway: gw}
	a2 := Attachment{Bridge: br, HostName: linkTestName(t), IfName: "eth0",
		Addr: linkPrefix(t, "10.213.17.3/24"), Gateway: gw}
	linkAttach(t, ns1, a1)
	linkAttach(t, ns2, a2)

	addrs, err := Addresses(ns1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(addrs), "map[eth0:[10.213.17.2/24] lo:[127.0.0.1/8]]"; got != want {
		t.Errorf("Addresses(ns1) = %s, want %s", got, want)
	}
	if err := linkPing(t, ns1, a2.Addr.Addr()); err != nil {
		t.Error(err)
	}
	if err := linkPing(t, ns2, a1.Addr.Addr()); err != nil {
		t.Error(err)
	}
	if err := linkPing(t, ns1, gw); err != nil {
		t.Error(err)
	}

	bridge, err := netlink.LinkByName(br)
	if err != nil {
		t.Fatal(err)
	}
	host, err := netlink.LinkByName(a1.HostName)
	if err != nil {
		t.Fatal(err)
	}
	if host.Attrs().MasterIndex != bridge.Attrs().Index {
		t.Errorf("host end's master is %d, want the bridge's %d", host.Attrs().MasterIndex, bridge.Attrs().Index)
	}
	if host.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("host end is down")
	}
	if pi, err := netlink.LinkGetProtinfo(host); err != nil || !pi.Hairpin {
		t.Errorf("hairpin off on the host end (%v)", err)
	}
	peer, err := linkHandle(t, ns1).LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if got := peer.Attrs().HardwareAddr.String(); got != "02:42:0a:d5:11:02" {
		t.Errorf("peer mac = %s, want 02:42:0a:d5:11:02", got)
	}
	if peer.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("eth0 is down")
	}
}

func TestAttachDefaultRoute(t *testing.T) {
	imagetest.NeedRoot(t)
	br := linkTestBridge(t, linkPrefix(t, "10.213.20.1/24"), 0)
	gw := netip.MustParseAddr("10.213.20.1")
	with, without := linkTestNS(t), linkTestNS(t)
	linkAttach(t, with, Attachment{Bridge: br, HostName: linkTestName(t), IfName: "eth0",
		Addr: linkPrefix(t, "10.213.20.2/24"), Gateway: gw})
	linkAttach(t, without, Attachment{Bridge: br, HostName: linkTestName(t), IfName: "eth0",
		Addr: linkPrefix(t, "10.213.20.3/24")})

	if def := linkDefaultRoutes(t, with); len(def) != 1 || !def[0].Gw.Equal(net.IP(gw.AsSlice())) {
		t.Errorf("default routes with Gateway = %v, want one via %s", def, gw)
	}
	if def := linkDefaultRoutes(t, without); len(def) != 0 {
		t.Errorf("default routes without Gateway = %v, want none", def)
	}

	// A second network on the same namespace: no gateway, its own ifname.
	br2 := linkTestBridge(t, linkPrefix(t, "10.213.24.1/24"), 0)
	linkAttach(t, with, Attachment{Bridge: br2, HostName: linkTestName(t), IfName: "eth1",
		Addr: linkPrefix(t, "10.213.24.2/24")})
	addrs, err := Addresses(with)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(addrs), "map[eth0:[10.213.20.2/24] eth1:[10.213.24.2/24] lo:[127.0.0.1/8]]"; got != want {
		t.Errorf("Addresses = %s, want %s", got, want)
	}
	if def := linkDefaultRoutes(t, with); len(def) != 1 {
		t.Errorf("default routes after eth1 = %v, want one", def)
	}
}

func TestAttachMTU(t *testing.T) {
	imagetest.NeedRoot(t)
	br := linkTestBridge(t, linkPrefix(t, "10.213.21.1/24"), 1400)
	ns := linkTestNS(t)
	a := Attachment{Bridge: br, HostName: linkTestName(t), IfName: "eth0", Addr: linkPrefix(t, "10.213.21.2/24")}
	linkAttach(t, ns, a)
	h := linkHandle(t, ns)
	check := func(want int) {
		t.Helper()
		host, err := netlink.LinkByName(a.HostName)
		if err != nil {
			t.Fatal(err)
		}
		peer, err := h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if host.Attrs().MTU != want || peer.Attrs().MTU != want {
			t.Errorf("mtu host %d, peer %d, want %d", host.Attrs().MTU, peer.Attrs().MTU, want)
		}
		if b, err := netlink.LinkByName(br); err != nil || b.Attrs().MTU != 1400 {
			t.Errorf("bridge mtu changed: %v (%v)", b.Attrs().MTU, err)
		}
	}
	check(1400)
	a.MTU = 1300
	if err := Attach(ns, a); err != nil { // again: replaces the pair
		t.Fatal(err)
	}
	check(1300)
}

func TestAttachRollback(t *testing.T) {
	imagetest.NeedRoot(t)
	br := linkTestBridge(t, linkPrefix(t, "10.213.18.1/24"), 0)
	ns := linkTestNS(t)
	h := linkHandle(t, ns)
	gone := func(hostName, ifName string) {
		t.Helper()
		if _, err := netlink.LinkByName(hostName); !linkIsGone(err) {
			t.Errorf("host end %s left behind (%v)", hostName, err)
		}
		if ifName == "" {
			return
		}
		if _, err := h.LinkByName(ifName); !linkIsGone(err) {
			t.Errorf("%s left in the namespace (%v)", ifName, err)
		}
	}

	// The gateway is not on the subnet: the last step fails, after the pair
	// was made, moved and given its address.
	a := Attachment{Bridge: br, HostName: linkTestName(t), IfName: "eth0",
		Addr: linkPrefix(t, "10.213.18.2/24"), Gateway: netip.MustParseAddr("10.213.23.1")}
	t.Cleanup(func() { _ = Detach(a.HostName) })
	if err := Attach(ns, a); err == nil {
		t.Fatal("Attach with a gateway off the subnet: no error")
	} else {
		t.Log(err)
	}
	gone(a.HostName, "eth0")

	// No such bridge: nothing is made.
	b := a
	b.Bridge, b.Gateway = linkTestName(t), netip.Addr{}
	if err := Attach(ns, b); err == nil {
		t.Error("Attach to a missing bridge: no error")
	}
	gone(b.HostName, "eth0")

	// The name is taken in the namespace: the first pair is left intact.
	ok := a
	ok.Gateway = netip.MustParseAddr("10.213.18.1")
	linkAttach(t, ns, ok)
	clash := Attachment{Bridge: br, HostName: linkTestName(t), IfName: "eth0", Addr: linkPrefix(t, "10.213.18.3/24")}
	t.Cleanup(func() { _ = Detach(clash.HostName) })
	if err := Attach(ns, clash); err == nil {
		t.Error("Attach with an ifname taken: no error")
	}
	gone(clash.HostName, "")
	if addrs, err := Addresses(ns); err != nil || fmt.Sprint(addrs["eth0"]) != "[10.213.18.2/24]" {
		t.Errorf("the first pair was disturbed: %v (%v)", addrs, err)
	}

	// A bad ifname or a bad address: refused before anything is made.
	for _, bad := range []Attachment{
		{Bridge: br, HostName: linkTestName(t), IfName: "eth0/x", Addr: linkPrefix(t, "10.213.18.4/24")},
		{Bridge: br, HostName: linkTestName(t), IfName: "eth9"},
		{Bridge: br, HostName: linkTestName(t), IfName: "eth9", Addr: linkPrefix(t, "10.213.18.4/24"),
			Gateway: netip.MustParseAddr("fd00::1")},
	} {
		if err := Attach(ns, bad); err == nil {
			t.Errorf("Attach(%+v): no error", bad)
			_ = Detach(bad.HostName)
		}
		gone(bad.HostName, "eth9")
	}
}

func TestAttachReplacesStalePair(t *testing.T) {
	imagetest.NeedRoot(t)
	br := linkTestBridge(t, linkPrefix(t, "10.213.22.1/24"), 0)
	ns := linkTestNS(t)
	a := Attachment{Bridge: br, HostName: linkTestName(t), IfName: "eth0", Addr: linkPrefix(t, "10.213.22.2/24")}
	linkAttach(t, ns, a)
	first, err := netlink.LinkByName(a.HostName)
	if err != nil {
		t.Fatal(err)
	}
	a.Addr = linkPrefix(t, "10.213.22.5/24")
	if err := Attach(ns, a); err != nil {
		t.Fatalf("Attach again: %v", err)
	}
	second, err := netlink.LinkByName(a.HostName)
	if err != nil {
		t.Fatal(err)
	}
	if first.Attrs().Index == second.Attrs().Index {
		t.Errorf("the stale pair was kept (index %d)", first.Attrs().Index)
	}
	if addrs, err := Addresses(ns); err != nil || fmt.Sprint(addrs) != "map[eth0:[10.213.22.5/24] lo:[127.0.0.1/8]]" {
		t.Errorf("Addresses = %v (%v)", addrs, err)
	}
}

func TestDetachTwice(t *testing.T) {
	imagetest.NeedRoot(t)
	br := linkTestBridge(t, linkPrefix(t, "10.213.23.1/24"), 0)
	ns := linkTestNS(t)
	a := Attachment{Bridge: br, HostName: linkTestName(t), IfName: "eth0", Addr: linkPrefix(t, "10.213.23.2/24")}
	linkAttach(t, ns, a)
	if err := Detach(a.HostName); err != nil {
		t.Fatal(err)
	}
	if err := Detach(a.HostName); err != nil {
		t.Errorf("second Detach: %v", err)
	}
	if _, err := netlink.LinkByName(a.HostName); !linkIsGone(err) {
		t.Errorf("host end still there (%v)", err)
	}
	if _, err := linkHandle(t, ns).LinkByName("eth0"); !linkIsGone(err) {
		t.Errorf("peer still in the namespace (%v)", err)
	}
	// Detach leaves alone a link that is not a veth.
	if err := Detach(br); err == nil {
		t.Errorf("Detach(bridge): no error")
	}
	if ok, err := BridgeExists(br); err != nil || !ok {
		t.Errorf("Detach(bridge) removed the bridge (%v)", err)
	}
}

func TestDeleteNamespaceRemovesVeth(t *testing.T) {
	imagetest.NeedRoot(t)
	br := linkTestBridge(t, linkPrefix(t, "10.213.25.1/24"), 0)
	ns := linkTestNS(t)
	a := Attachment{Bridge: br, HostName: linkTestName(t), IfName: "eth0",
		Addr: linkPrefix(t, "10.213.25.2/24"), Gateway: netip.MustParseAddr("10.213.25.1")}
	linkAttach(t, ns, a)
	if err := DeleteNamespace(ns); err != nil {
		t.Fatal(err)
	}
	// The kernel destroys a namespace asynchronously once nothing holds it;
	// the host end goes with it. If anything still held the namespace (a
	// thread, a mount copy), this would time out.
	linkWait(t, "the host end to vanish with the namespace", func() bool {
		_, err := netlink.LinkByName(a.HostName)
		return linkIsGone(err)
	})
	if err := Detach(a.HostName); err != nil {
		t.Errorf("Detach after the namespace went: %v", err)
	}
	if _, err := Addresses(ns); err == nil {
		t.Errorf("Addresses of a deleted namespace: no error")
	}
}

// TestAttachProcNamespace attaches the namespace of a running process by
// its /proc/PID/ns/net, as the monitor does for a container's.
func TestAttachProcNamespace(t *testing.T) {
	imagetest.NeedRoot(t)
	br := linkTestBridge(t, linkPrefix(t, "10.213.26.1/24"), 0)
	cmd := exec.Command("unshare", "--net", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ns := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"
	host := linkInode(t, "/proc/self/ns/net")
	linkWait(t, "unshare(1) to enter its namespace", func() bool {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
		return strings.TrimSpace(string(b)) == "sleep"
	})
	if linkInode(t, ns) == host {
		t.Fatal("the process is in the host's namespace")
	}
	if err := linkLoopbackUp(ns); err != nil {
		t.Fatal(err)
	}
	a := Attachment{Bridge: br, HostName: linkTestName(t), IfName: "eth0",
		Addr: linkPrefix(t, "10.213.26.2/24"), Gateway: netip.MustParseAddr("10.213.26.1")}
	linkAttach(t, ns, a)
	addrs, err := Addresses(ns)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(addrs), "map[eth0:[10.213.26.2/24] lo:[127.0.0.1/8]]"; got != want {
		t.Errorf("Addresses = %s, want %s", got, want)
	}
	// The pair goes with the process's namespace.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	linkWait(t, "the host end to vanish with the process", func() bool {
		_, err := netlink.LinkByName(a.HostName)
		return linkIsGone(err)
	})
}
