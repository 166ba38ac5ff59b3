package network

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/berth-dev/berth/runtime/image/imagetest"
	"github.com/vishvananda/netlink"
)

// linkTestBridge ensures a bridge of a fresh name with gateway gw, deleted
// at cleanup.
func linkTestBridge(t *testing.T, gw netip.Prefix, mtu int) string {
	t.Helper()
	name := linkTestName(t)
	t.Cleanup(func() {
		if err := DeleteBridge(name); err != nil {
			t.Error(err)
		}
	})
	if err := EnsureBridge(name, gw, mtu); err != nil {
		t.Fatal(err)
	}
	return name
}

// linkBridgeAddrs lists the IPv4 addresses of a host link.
func linkBridgeAddrs(t *testing.T, l netlink.Link) []string {
	t.Helper()
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		out = append(out, a.IPNet.String())
	}
	return out
}

func TestEnsureBridgeTwice(t *testing.T) {
	imagetest.NeedRoot(t)
	gw := linkPrefix(t, "10.213.16.1/24")
	name := linkTestBridge(t, gw, 1400)
	first, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureBridge(name, gw, 1400); err != nil {
		t.Fatalf("second EnsureBridge: %v", err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		t.Fatalf("%s is a %s", name, l.Type())
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("bridge is down")
	}
	if l.Attrs().MTU != 1400 {
		t.Errorf("mtu = %d, want 1400", l.Attrs().MTU)
	}
	if got := linkBridgeAddrs(t, l); len(got) != 1 || got[0] != "10.213.16.1/24" {
		t.Errorf("addresses = %v, want [10.213.16.1/24]", got)
	}
	mac := l.Attrs().HardwareAddr
	if len(mac) != 6 || mac[0]&0x03 != 0x02 || mac.String() != first.Attrs().HardwareAddr.String() {
		t.Errorf("mac = %s (first %s), want a fixed locally administered unicast one", mac, first.Attrs().HardwareAddr)
	}
	if ok, err := BridgeExists(name); err != nil || !ok {
		t.Errorf("BridgeExists = %v, %v, want true", ok, err)
	}

	// A new mtu is applied to the bridge that is there.
	if err := EnsureBridge(name, gw, 1300); err != nil {
		t.Fatal(err)
	}
	if l, err = netlink.LinkByName(name); err != nil || l.Attrs().MTU != 1300 {
		t.Errorf("mtu after EnsureBridge(1300) = %d (%v)", l.Attrs().MTU, err)
	}

	if err := DeleteBridge(name); err != nil {
		t.Fatal(err)
	}
	if ok, err := BridgeExists(name); err != nil || ok {
		t.Errorf("BridgeExists after delete = %v, %v, want false", ok, err)
	}
	if err := DeleteBridge(name); err != nil {
		t.Errorf("second DeleteBridge: %v", err)
	}
}

func TestEnsureBridgeConcurrent(t *testing.T) {
	imagetest.NeedRoot(t)
	name := linkTestName(t)
	t.Cleanup(func() { _ = DeleteBridge(name) })
	gw := linkPrefix(t, "10.213.19.1/24")
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = EnsureBridge(name, gw, 0) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if got := linkBridgeAddrs(t, l); len(got) != 1 || got[0] != "10.213.19.1/24" {
		t.Errorf("addresses = %v, want [10.213.19.1/24]", got)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("bridge is down")
	}
}

func TestEnsureBridgeNotABridge(t *testing.T) {
	imagetest.NeedRoot(t)
	name, peer := linkTestName(t), linkTestName(t)
	la := netlink.NewLinkAttrs()
	la.Name = name
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: peer}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Detach(name); err != nil {
			t.Error(err)
		}
	})
	if err := EnsureBridge(name, linkPrefix(t, "10.213.16.1/24"), 0); !errors.Is(err, ErrNotBridge) {
		t.Errorf("EnsureBridge over a veth: %v, want ErrNotBridge", err)
	}
	if ok, err := BridgeExists(name); err != nil || ok {
		t.Errorf("BridgeExists(veth) = %v, %v, want false", ok, err)
	}
	if err := DeleteBridge(name); !errors.Is(err, ErrNotBridge) {
		t.Errorf("DeleteBridge(veth): %v, want ErrNotBridge", err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatalf("the veth is gone: %v", err)
	}
	if got := linkBridgeAddrs(t, l); len(got) != 0 {
		t.Errorf("the veth got addresses %v", got)
	}
}

func TestEnsureBridgeBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		gw   netip.Prefix
		mtu  int
	}{
		{"bt-l0123456789ab", netip.MustParsePrefix("10.213.16.1/24"), 0}, // 16 bytes
		{"", netip.MustParsePrefix("10.213.16.1/24"), 0},
		{"bt-l/x", netip.MustParsePrefix("10.213.16.1/24"), 0},
		{"bt-lbad", netip.Prefix{}, 0},
		{"bt-lbad", netip.MustParsePrefix("10.213.16.1/24"), -1},
	} {
		if err := EnsureBridge(tc.name, tc.gw, tc.mtu); err == nil {
			t.Errorf("EnsureBridge(%q, %s, %d): no error", tc.name, tc.gw, tc.mtu)
			_ = DeleteBridge(tc.name)
		}
	}
}
