package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Attachment is one container's plug into one network.
type Attachment struct {
	Bridge   string       // the bridge to plug into
	HostName string       // the host end's name (≤15 chars, the caller chooses)
	IfName   string       // the name inside the namespace: eth0, eth1…
	Addr     netip.Prefix // the container's address with the subnet's length: 10.213.17.2/24
	Gateway  netip.Addr   // default route via it; zero: no default route (internal networks, or not the first network)
	MTU      int          // 0: the bridge's
}

func (a Attachment) check() error {
	for _, n := range []string{a.Bridge, a.HostName, a.IfName} {
		if err := linkCheckName(n); err != nil {
			return err
		}
	}
	if !a.Addr.IsValid() || a.Addr.Addr().Is4In6() {
		return fmt.Errorf("invalid address %s", a.Addr)
	}
	if a.Gateway.IsValid() && a.Gateway.Is4() != a.Addr.Addr().Is4() {
		return fmt.Errorf("gateway %s and address %s are of different families", a.Gateway, a.Addr)
	}
	if a.MTU < 0 {
		return fmt.Errorf("invalid mtu %d", a.MTU)
	}
	return nil
}

// Attach creates a veth pair, plugs the host end into the bridge and brings
// it up, puts the peer into the namespace at nsPath as IfName, gives it Addr,
// brings it up, and adds the default route when Gateway is set. On failure
// nothing is left (the veth is deleted). Attaching the same HostName again
// first removes a stale pair. nsPath is a namespace made by NewNamespace or
// a process's /proc/PID/ns/net.
//
// The peer is created directly inside the namespace under its final name,
// in the same netlink request as the pair (IFLA_NET_NS_FD in the peer's
// attributes, as `ip link add H type veth peer name eth0 netns PATH` does):
// the same result as creating it on the host, moving it with LinkSetNsFd and
// renaming it, without the moment when it sits on the host under a
// temporary name that could clash. Inside the namespace everything goes
// through a netlink handle opened there (linkHandleAt); no thread of the
// caller ever switches namespace.
func Attach(nsPath string, a Attachment) (err error) {
	if err := a.check(); err != nil {
		return fmt.Errorf("attach %s: %w", a.HostName, err)
	}
	fail := func(err error) error {
		return fmt.Errorf("attach %s to bridge %s as %s in %s: %w", a.HostName, a.Bridge, a.IfName, nsPath, err)
	}
	br, err := netlink.LinkByName(a.Bridge)
	if err != nil {
		return fail(fmt.Errorf("bridge %s: %w", a.Bridge, err))
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		return fail(fmt.Errorf("bridge %s: is a %s: %w", a.Bridge, br.Type(), ErrNotBridge))
	}
	mtu := a.MTU
	if mtu == 0 {
		// A port with a smaller MTU would pull the bridge's down with it,
		// a bigger one would send frames the bridge cannot carry.
		mtu = br.Attrs().MTU
	}
	ns, err := linkNetnsHandle(nsPath)
	if err != nil {
		return fail(err)
	}
	defer ns.Close()
	h, err := linkHandleAt(ns)
	if err != nil {
		return fail(err)
	}
	defer h.Close()

	if err := Detach(a.HostName); err != nil {
		return fail(fmt.Errorf("remove stale pair: %w", err))
	}
	la := netlink.NewLinkAttrs()
	la.Name = a.HostName
	la.MTU = mtu
	veth := &netlink.Veth{
		LinkAttrs:        la,
		PeerName:         a.IfName,
		PeerNamespace:    netlink.NsFd(int(ns)),
		PeerHardwareAddr: linkMACFor(a.Addr.Addr()),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fail(fmt.Errorf("create veth pair: %w", err))
	}
	defer func() {
		if err != nil {
			// Deleting one end deletes both, wherever the peer is.
			if derr := Detach(a.HostName); derr != nil {
				err = errors.Join(err, fmt.Errorf("roll back: %w", derr))
			}
		}
	}()

	host, err := netlink.LinkByName(a.HostName)
	if err != nil {
		return fail(fmt.Errorf("host end: %w", err))
	}
	if err := netlink.LinkSetMaster(host, br); err != nil {
		return fail(fmt.Errorf("plug host end into bridge: %w", err))
	}
	// Hairpin mode lets the bridge send a frame back out of the port it came
	// in on: a container that reaches its own published port through the
	// host (DNAT to its own address) gets the answer through the same veth.
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fail(fmt.Errorf("hairpin on host end: %w", err))
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fail(fmt.Errorf("set host end up: %w", err))
	}

	peer, err := h.LinkByName(a.IfName)
	if err != nil {
		return fail(fmt.Errorf("peer: %w", err))
	}
	if err := h.AddrAdd(peer, &netlink.Addr{IPNet: linkIPNet(a.Addr)}); err != nil {
		return fail(fmt.Errorf("address %s: %w", a.Addr, err))
	}
	if err := h.LinkSetUp(peer); err != nil {
		return fail(fmt.Errorf("set %s up: %w", a.IfName, err))
	}
	if a.Gateway.IsValid() {
		bits := a.Gateway.BitLen()
		route := &netlink.Route{
			LinkIndex: peer.Attrs().Index,
			Dst:       &net.IPNet{IP: make(net.IP, bits/8), Mask: net.CIDRMask(0, bits)},
			Gw:        net.IP(a.Gateway.AsSlice()),
		}
		if err := h.RouteAdd(route); err != nil {
			return fail(fmt.Errorf("default route via %s: %w", a.Gateway, err))
		}
	}
	return nil
}

// Detach deletes the pair by its host end; gone is success (the pair also
// vanishes with the namespace). A link of that name that is not a veth is
// left alone.
func Detach(hostName string) error {
	l, err := netlink.LinkByName(hostName)
	if linkIsGone(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("detach %s: %w", hostName, err)
	}
	if _, ok := l.(*netlink.Veth); !ok {
		return fmt.Errorf("detach %s: is a %s, not a veth", hostName, l.Type())
	}
	if err := netlink.LinkDel(l); err != nil && !linkIsGone(err) {
		return fmt.Errorf("detach %s: delete: %w", hostName, err)
	}
	return nil
}

// Addresses lists the IPv4 addresses of the interfaces inside the namespace
// at nsPath (as for Attach), by interface name (for tests and `berth
// inspect`). Interfaces without one are left out.
func Addresses(nsPath string) (map[string][]netip.Prefix, error) {
	ns, err := linkNetnsHandle(nsPath)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := linkHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer h.Close()
	links, err := linkRetryDump(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: list links: %w", nsPath, err)
	}
	out := make(map[string][]netip.Prefix)
	for _, l := range links {
		addrs, err := linkRetryDump(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_V4) })
		if err != nil {
			return nil, fmt.Errorf("network namespace %s: %s: list addresses: %w", nsPath, l.Attrs().Name, err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			ones, _ := a.Mask.Size()
			name := l.Attrs().Name
			out[name] = append(out[name], netip.PrefixFrom(ip.Unmap(), ones))
		}
	}
	return out, nil
}

// linkMACFor derives a container's MAC from its IPv4 address (02:42 and the
// four bytes, as docker does), so that an address handed to a new container
// keeps its MAC and no neighbour's ARP cache goes stale. IPv6: random.
func linkMACFor(ip netip.Addr) net.HardwareAddr {
	if !ip.Is4() {
		return nil
	}
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}
