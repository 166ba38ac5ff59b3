package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

// PoolsEnv is the environment variable through which a user (or a test)
// chooses the address pools that networks without a declared subnet are
// picked from; its value is read by ParsePools.
const PoolsEnv = "BERTH_ADDRESS_POOLS"

// Pool is a range that subnets of one size are cut from, as an entry of
// docker's default-address-pools: Base 10.213.0.0/16 with Size 24 gives
// 10.213.0.0/24, 10.213.1.0/24, …
type Pool struct {
	Base netip.Prefix
	Size int
}

func (p Pool) String() string { return fmt.Sprintf("%s:%d", p.Base, p.Size) }

// DefaultPools returns docker's default address pools: the /16s of
// 172.17.0.0–172.31.255.255, then the /20s of 192.168.0.0/16. With a docker
// on the host holding 172.17.0.0/16, compose networks land on 172.18.0.0/16
// onward, as they would under docker.
func DefaultPools() []Pool {
	return []Pool{
		{Base: netip.MustParsePrefix("172.17.0.0/16"), Size: 16},
		{Base: netip.MustParsePrefix("172.18.0.0/15"), Size: 16},
		{Base: netip.MustParsePrefix("172.20.0.0/14"), Size: 16},
		{Base: netip.MustParsePrefix("172.24.0.0/13"), Size: 16},
		{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20},
	}
}

// ParsePools reads a pool list such as "10.213.128.0/17:24,10.214.0.0/16:24"
// (base:size, comma separated), the value of PoolsEnv. An empty value means
// DefaultPools. The error names the entry at fault.
func ParsePools(s string) ([]Pool, error) {
	if strings.TrimSpace(s) == "" {
		return DefaultPools(), nil
	}
	var pools []Pool
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		// The last colon: an IPv6 base has colons of its own.
		i := strings.LastIndex(entry, ":")
		if i < 0 {
			return nil, ipamErrorf(ErrInvalidPool, "address pool %q: want base:size, as 10.213.0.0/16:24", entry)
		}
		base, err := netip.ParsePrefix(entry[:i])
		if err != nil {
			return nil, ipamErrorf(ErrInvalidPool, "address pool %q: base: %w", entry, err)
		}
		size, err := strconv.Atoi(entry[i+1:])
		if err != nil {
			return nil, ipamErrorf(ErrInvalidPool, "address pool %q: size %q is not a number", entry, entry[i+1:])
		}
		p := Pool{Base: base, Size: size}
		if err := ipamCheckPool(p); err != nil {
			return nil, ipamErrorf(ErrInvalidPool, "address pool %q: %s", entry, err)
		}
		pools = append(pools, p)
	}
	if len(pools) == 0 {
		return nil, ipamErrorf(ErrInvalidPool, "address pools %q: no pool", s)
	}
	return pools, nil
}

// ipamCheckPool returns why p cannot be used, without a sentinel.
func ipamCheckPool(p Pool) error {
	if !p.Base.IsValid() {
		return errors.New("no base prefix")
	}
	if p.Base != p.Base.Masked() {
		return fmt.Errorf("base %s has host bits set (did you mean %s?)", p.Base, p.Base.Masked())
	}
	maxSize := p.Base.Addr().BitLen() - 2 // room for a gateway and one container
	if p.Size < p.Base.Bits() || p.Size > maxSize {
		return fmt.Errorf("size %d is not between %d and %d", p.Size, p.Base.Bits(), maxSize)
	}
	return nil
}

// PickSubnet returns the first subnet of the pools, in their order, that
// overlaps no prefix of taken (the subnets of other networks and the host's
// routes, see HostRoutes).
func PickSubnet(pools []Pool, taken []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		if err := ipamCheckPool(p); err != nil {
			return netip.Prefix{}, ipamErrorf(ErrInvalidPool, "address pool %s: %s", p, err)
		}
		cand := netip.PrefixFrom(p.Base.Addr(), p.Size)
		for p.Base.Contains(cand.Addr()) {
			i := slices.IndexFunc(taken, func(t netip.Prefix) bool { return Overlaps(cand, t) })
			if i < 0 {
				return cand, nil
			}
			// Jump past whichever is larger: a taken /12 skips all the
			// /24s inside it at once, so that even a huge pool is walked
			// in a few steps per taken prefix. The end of a larger prefix
			// is on a boundary of the smaller size too.
			end := ipamLast(cand)
			if t := taken[i].Masked(); t.Bits() < cand.Bits() {
				end = ipamLast(t)
			}
			next, ok := ipamAddrAdd(end, 1)
			if !ok {
				break
			}
			cand = netip.PrefixFrom(next, p.Size)
		}
	}
	names := make([]string, len(pools))
	for i, p := range pools {
		names[i] = p.String()
	}
	return netip.Prefix{}, ipamErrorf(ErrNoFreeSubnet,
		"no free subnet in the address pools %s: each overlaps a host route or another network; declare an ipam subnet or choose other pools with %s",
		strings.Join(names, ","), PoolsEnv)
}

// Overlaps reports whether a and b have an address in common. Prefixes of
// different families, or invalid ones, never overlap.
func Overlaps(a, b netip.Prefix) bool {
	return a.IsValid() && b.IsValid() && a.Overlaps(b)
}

// CheckSubnets returns an error naming both networks when two of the
// subnets overlap (ErrSubnetsOverlap). Networks without a subnet (the zero
// prefix) are left out.
func CheckSubnets(nets map[string]netip.Prefix) error {
	names := make([]string, 0, len(nets))
	for name, p := range nets {
		if p.IsValid() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for i, a := range names {
		for _, b := range names[i+1:] {
			if Overlaps(nets[a], nets[b]) {
				return ipamErrorf(ErrSubnetsOverlap, "networks %q and %q overlap: %s and %s", a, b, nets[a], nets[b])
			}
		}
	}
	return nil
}

// Gateway returns the gateway address berth gives a subnet: its first host
// address (10.213.7.1 for 10.213.7.0/24), or the zero Addr when the subnet
// has no room for one.
func Gateway(subnet netip.Prefix) netip.Addr {
	if !subnet.IsValid() {
		return netip.Addr{}
	}
	gw, ok := ipamAddrAdd(subnet.Masked().Addr(), 1)
	if !ok || !subnet.Contains(gw) {
		return netip.Addr{}
	}
	return gw
}

// CheckAddress returns an *AddressError when addr cannot be given to a
// container on subnet, whose gateway is Gateway(subnet): outside the subnet
// (ErrAddressOutside), or its network address, broadcast address or gateway
// (ErrAddressReserved).
func CheckAddress(subnet netip.Prefix, addr netip.Addr) error {
	return ipamCheckAddress("", subnet, Gateway(subnet), addr)
}

// HostRoutes returns the IPv4 destinations of the host's routes (main
// table) and the prefixes of its interface addresses, so that a subnet
// picked for a new network clashes with nothing the host reaches already.
// The default route (0.0.0.0/0, which overlaps everything) and loopback
// prefixes are left out. The result is sorted and has no duplicates.
func HostRoutes() ([]netip.Prefix, error) {
	var routes []netlink.Route
	var addrs []netlink.Addr
	var err error
	// A dump interrupted by a concurrent change is incomplete: read again.
	for range 5 {
		routes, err = netlink.RouteList(nil, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list host routes: netlink RTM_GETROUTE: %w", err)
	}
	for range 5 {
		addrs, err = netlink.AddrList(nil, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list host addresses: netlink RTM_GETADDR: %w", err)
	}
	var out []netip.Prefix
	add := func(n *net.IPNet) {
		if p, ok := ipamPrefixOf(n); ok && p.Bits() > 0 && !p.Addr().IsLoopback() {
			out = append(out, p)
		}
	}
	for _, r := range routes {
		add(r.Dst) // nil for the default route
	}
	for _, a := range addrs {
		add(a.IPNet)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out), nil
}

// ipamPrefixOf converts n to a masked prefix.
func ipamPrefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if addr.Is4In6() && bits == 128 {
		ones -= 96
	}
	addr = addr.Unmap()
	if bits == 0 || ones < 0 || ones > addr.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(addr, ones).Masked(), true
}
