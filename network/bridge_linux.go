package network

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNotBridge reports a link that has the name of a bridge but is not one.
var ErrNotBridge = errors.New("not a bridge")

// EnsureBridge creates the bridge if missing (or adopts it), gives it gateway
// (e.g. 10.213.17.1/24) if not already there, sets mtu when > 0, and brings
// it up. Safe to run twice and from two processes at once: EEXIST from the
// kernel means another run got there first, which is fine. A bridge created
// here is deleted again if a later step fails; an adopted one is left as
// found plus whatever was done.
func EnsureBridge(name string, gateway netip.Prefix, mtu int) (err error) {
	if err := linkCheckName(name); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	if !gateway.IsValid() || gateway.Addr().Is4In6() {
		return fmt.Errorf("bridge %s: invalid gateway %s", name, gateway)
	}
	if mtu < 0 {
		return fmt.Errorf("bridge %s: invalid mtu %d", name, mtu)
	}
	br, created, err := linkEnsureBridgeLink(name)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if created {
		defer func() {
			if err != nil {
				if derr := netlink.LinkDel(br); derr != nil && !linkIsGone(derr) {
					err = errors.Join(err, fmt.Errorf("bridge %s: roll back: %w", name, derr))
				}
			}
		}()
	}
	if err := linkEnsureAddr(br, gateway); err != nil {
		return fmt.Errorf("bridge %s: gateway %s: %w", name, gateway, err)
	}
	// Set apart from creation: an MTU given in RTM_NEWLINK does not count
	// as chosen by the user, and the kernel would then pull the bridge's
	// MTU down to that of its smallest port; one set by RTM_SETLINK stays.
	if mtu > 0 && br.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(br, mtu); err != nil {
			return fmt.Errorf("bridge %s: set mtu %d: %w", name, mtu, err)
		}
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("bridge %s: set up: %w", name, err)
	}
	return nil
}

// DeleteBridge removes the bridge; gone is success. A link of that name that
// is not a bridge is left alone (ErrNotBridge).
func DeleteBridge(name string) error {
	l, err := netlink.LinkByName(name)
	if linkIsGone(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return fmt.Errorf("bridge %s: is a %s: %w", name, l.Type(), ErrNotBridge)
	}
	if err := netlink.LinkDel(l); err != nil && !linkIsGone(err) {
		return fmt.Errorf("bridge %s: delete: %w", name, err)
	}
	return nil
}

// BridgeExists reports whether a link of that name exists and is a bridge.
func BridgeExists(name string) (bool, error) {
	l, err := netlink.LinkByName(name)
	if linkIsGone(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bridge %s: %w", name, err)
	}
	_, ok := l.(*netlink.Bridge)
	return ok, nil
}

// linkEnsureBridgeLink creates the bridge or finds the one that is there,
// and reports whether it made it.
func linkEnsureBridgeLink(name string) (netlink.Link, bool, error) {
	for range 3 {
		la := netlink.NewLinkAttrs()
		la.Name = name
		// A bridge whose address the kernel chose takes the lowest address
		// of its ports, so it would change as containers come and go, and
		// with it the gateway's MAC in every container's ARP cache. One set
		// at creation stays (docker does the same).
		mac, err := linkRandomMAC()
		if err != nil {
			return nil, false, err
		}
		la.HardwareAddr = mac
		err = netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la})
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, false, fmt.Errorf("create: %w", err)
		}
		created := err == nil
		l, err := netlink.LinkByName(name)
		if linkIsGone(err) && !created {
			continue // deleted by someone else since our EEXIST: try again
		}
		if err != nil {
			return nil, false, err
		}
		if _, ok := l.(*netlink.Bridge); !ok {
			return nil, false, fmt.Errorf("is a %s: %w", l.Type(), ErrNotBridge)
		}
		return l, created, nil
	}
	return nil, false, fmt.Errorf("create: created and deleted under our feet three times")
}

// linkEnsureAddr gives link the address p unless it has it already.
func linkEnsureAddr(link netlink.Link, p netip.Prefix) error {
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := linkRetryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, family) })
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	want := linkIPNet(p)
	for _, a := range addrs {
		if a.IPNet != nil && a.IPNet.IP.Equal(want.IP) && a.IPNet.Mask.String() == want.Mask.String() {
			return nil
		}
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: want}); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add: %w", err)
	}
	return nil
}

// linkIPNet converts a prefix that keeps its host bits (10.213.17.1/24).
func linkIPNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}

// linkRandomMAC returns a random unicast, locally administered address.
func linkRandomMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, err
	}
	mac[0] = mac[0]&0xfe | 0x02
	return mac, nil
}

// linkIsGone reports an error that means the link is not there.
func linkIsGone(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// linkRetryDump retries a netlink dump that the kernel interrupted because
// the table changed under it (NLM_F_DUMP_INTR).
func linkRetryDump[T any](dump func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 5 {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// linkCheckName applies the kernel's rules for an interface name
// (dev_valid_name): 1 to 15 bytes, not "." or "..", no '/', ':' or space.
func linkCheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty interface name")
	case len(name) > unix.IFNAMSIZ-1:
		return fmt.Errorf("interface name %q: longer than %d bytes", name, unix.IFNAMSIZ-1)
	case name == "." || name == "..":
		return fmt.Errorf("invalid interface name %q", name)
	case strings.ContainsAny(name, "/: \t\n\v\f\r"):
		return fmt.Errorf("interface name %q: contains '/', ':' or a space", name)
	}
	return nil
}
