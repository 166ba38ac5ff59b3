package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Lease is a container's address on a network, and the names DNS answers
// with that address there.
type Lease struct {
	Network   string     `json:"network"`
	Container string     `json:"container"` // container name
	Addr      netip.Addr `json:"addr"`
	Names     []string   `json:"names,omitempty"` // service name, container name, aliases
	Project   string     `json:"project,omitempty"`
}

// ipamLeaseFile is the content of leases.json.
type ipamLeaseFile struct {
	Leases []Lease `json:"leases"`
}

// Lease gives container an address on network: want when it is valid (the
// compose ipv4_address), else the lowest free address after the gateway.
// A container that has a lease on the network keeps its address (unless it
// wants another one) and gets names and project updated. A want that the
// network cannot give is an *AddressError: ErrAddressOutside,
// ErrAddressReserved, or ErrAddressInUse when another container has it.
// A full network gives ErrNoFreeAddress.
func (s *Store) Lease(network, container string, want netip.Addr, names []string, project string) (Lease, error) {
	if err := ipamCheckName(network); err != nil {
		return Lease{}, err
	}
	if container == "" {
		return Lease{}, fmt.Errorf("network %q: lease: no container name", network)
	}
	want = want.Unmap()
	var out Lease
	err := s.locked(func() error {
		n, err := s.Network(network)
		if err != nil {
			return err
		}
		leases, err := s.readLeases(network)
		if err != nil {
			return err
		}
		mine := slices.IndexFunc(leases, func(l Lease) bool { return l.Container == container })
		l := Lease{Network: network, Container: container, Names: ipamNames(names), Project: project}
		switch {
		case want.IsValid():
			if err := ipamCheckAddress(network, n.Subnet, n.Gateway, want); err != nil {
				return err
			}
			for _, o := range leases {
				if o.Addr == want && o.Container != container {
					return &AddressError{Network: network, Subnet: n.Subnet, Addr: want, Err: ErrAddressInUse, Holder: o.Container}
				}
			}
			l.Addr = want
		case mine >= 0:
			l.Addr = leases[mine].Addr
		default:
			used := make(map[netip.Addr]bool, len(leases))
			for _, o := range leases {
				used[o.Addr] = true
			}
			addr, ok := ipamAllocate(n.Subnet, n.Gateway, used)
			if !ok {
				return ipamErrorf(ErrNoFreeAddress, "network %q: no free address in %s for container %q: %d containers attached",
					network, n.Subnet, container, len(leases))
			}
			l.Addr = addr
		}
		out = l
		if mine >= 0 {
			if ipamSameLease(leases[mine], l) {
				return nil // nothing to write
			}
			leases = slices.Delete(leases, mine, mine+1)
		}
		return s.writeLeases(network, append(leases, l))
	})
	if err != nil {
		return Lease{}, err
	}
	return out, nil
}

// Release returns container's address on network; no lease (or no
// network) is no error.
func (s *Store) Release(network, container string) error {
	if err := ipamCheckName(network); err != nil {
		return err
	}
	return s.locked(func() error { return s.release(network, container) })
}

// ReleaseContainer returns container's addresses on every network.
func (s *Store) ReleaseContainer(container string) error {
	return s.locked(func() error {
		names, err := s.networkNames()
		if err != nil {
			return err
		}
		var errs []error
		for _, name := range names {
			errs = append(errs, s.release(name, container))
		}
		return errors.Join(errs...)
	})
}

// release drops container's lease on network; the store is locked.
func (s *Store) release(network, container string) error {
	leases, err := s.readLeases(network)
	if err != nil {
		return err
	}
	kept := slices.DeleteFunc(slices.Clone(leases), func(l Lease) bool { return l.Container == container })
	if len(kept) == len(leases) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(s.dir, network, ipamNetworkFile)); errors.Is(err, fs.ErrNotExist) {
		return nil // a crash's leftover, removed with the folder by the next create
	}
	return s.writeLeases(network, kept)
}

// Leases returns the leases of network, sorted by address, or
// ErrNetworkNotFound. It takes no lock and reads one file.
func (s *Store) Leases(network string) ([]Lease, error) {
	if err := ipamCheckName(network); err != nil {
		return nil, err
	}
	leases, err := s.readLeases(network)
	if err != nil {
		return nil, err
	}
	if len(leases) == 0 {
		// No leases file is also what a missing network looks like.
		if _, err := s.Network(network); err != nil {
			return nil, err
		}
	}
	return leases, nil
}

// ContainerLeases returns container's leases on every network, sorted by
// network name.
func (s *Store) ContainerLeases(container string) ([]Lease, error) {
	names, err := s.networkNames()
	if err != nil {
		return nil, err
	}
	var out []Lease
	for _, name := range names {
		leases, err := s.readLeases(name)
		if err != nil {
			return nil, err
		}
		for _, l := range leases {
			if l.Container == container {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// readLeases reads network's leases file; none is no lease.
func (s *Store) readLeases(network string) ([]Lease, error) {
	var f ipamLeaseFile
	if err := ipamReadJSON(filepath.Join(s.dir, network, ipamLeasesFile), &f); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("network %q: leases: %w", network, err)
	}
	for i := range f.Leases {
		f.Leases[i].Network = network
	}
	return f.Leases, nil
}

// writeLeases replaces network's leases file; the store is locked.
func (s *Store) writeLeases(network string, leases []Lease) error {
	slices.SortFunc(leases, func(a, b Lease) int { return a.Addr.Compare(b.Addr) })
	if leases == nil {
		leases = []Lease{}
	}
	if err := ipamWriteJSON(filepath.Join(s.dir, network, ipamLeasesFile), ipamLeaseFile{Leases: leases}); err != nil {
		return fmt.Errorf("network %q: leases: %w", network, err)
	}
	return nil
}

// ipamSameLease reports whether writing b over a would change nothing.
func ipamSameLease(a, b Lease) bool {
	return a.Addr == b.Addr && a.Project == b.Project && slices.Equal(a.Names, b.Names)
}

// ipamNames returns names without empty entries and duplicates, in order.
func ipamNames(names []string) []string {
	var out []string
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// ipamAllocate returns the lowest address of subnet that is neither
// reserved nor used.
func ipamAllocate(subnet netip.Prefix, gateway netip.Addr, used map[netip.Addr]bool) (netip.Addr, bool) {
	subnet = subnet.Masked()
	a, ok := ipamAddrAdd(subnet.Addr(), 1)
	for ok && subnet.Contains(a) {
		if !used[a] && ipamReserved(subnet, gateway, a) == "" {
			return a, true
		}
		a, ok = ipamAddrAdd(a, 1)
	}
	return netip.Addr{}, false
}

// ipamReserved says which of subnet's reserved addresses addr is: "network
// address", "broadcast address" (IPv4 only), "gateway", or "" for none.
func ipamReserved(subnet netip.Prefix, gateway, addr netip.Addr) string {
	switch {
	case addr == subnet.Masked().Addr():
		return "network address"
	case addr.Is4() && addr == ipamLast(subnet):
		return "broadcast address"
	case gateway.IsValid() && addr == gateway:
		return "gateway"
	}
	return ""
}

// ipamCheckAddress returns an *AddressError when addr cannot be given to a
// container on subnet with that gateway.
func ipamCheckAddress(network string, subnet netip.Prefix, gateway, addr netip.Addr) error {
	addr = addr.Unmap()
	e := &AddressError{Network: network, Subnet: subnet, Addr: addr}
	if !addr.IsValid() || !subnet.Contains(addr) {
		e.Err = ErrAddressOutside
		return e
	}
	if e.Reason = ipamReserved(subnet, gateway, addr); e.Reason != "" {
		e.Err = ErrAddressReserved
		return e
	}
	return nil
}

// ipamAddrAdd returns a+n, false when that passes the end of a's family.
func ipamAddrAdd(a netip.Addr, n uint64) (netip.Addr, bool) {
	if a.Is4() {
		b := a.As4()
		v := uint64(binary.BigEndian.Uint32(b[:])) + n
		if v > math.MaxUint32 {
			return netip.Addr{}, false
		}
		binary.BigEndian.PutUint32(b[:], uint32(v))
		return netip.AddrFrom4(b), true
	}
	if !a.IsValid() {
		return netip.Addr{}, false
	}
	b := a.As16()
	lo, carry := bits.Add64(binary.BigEndian.Uint64(b[8:]), n, 0)
	hi, carry := bits.Add64(binary.BigEndian.Uint64(b[:8]), 0, carry)
	if carry != 0 {
		return netip.Addr{}, false
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b), true
}

// ipamLast returns the last address of p: its broadcast address in IPv4.
func ipamLast(p netip.Prefix) netip.Addr {
	if !p.IsValid() {
		return netip.Addr{}
	}
	p = p.Masked()
	host := uint(p.Addr().BitLen() - p.Bits())
	if p.Addr().Is4() {
		b := p.Addr().As4()
		v := binary.BigEndian.Uint32(b[:]) | (uint32(1)<<host - 1)
		binary.BigEndian.PutUint32(b[:], v)
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	lo, hi := binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[:8])
	if host >= 64 {
		lo = math.MaxUint64
		hi |= uint64(1)<<(host-64) - 1
	} else {
		lo |= uint64(1)<<host - 1
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}
