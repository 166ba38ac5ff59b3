package network

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrPublishedPortConflict is returned by CheckPorts when two mappings claim
// the same host address, port and protocol.
var ErrPublishedPortConflict = errors.New("published port already claimed")

// ErrBadPortMapping is returned for a mapping that cannot become a rule: an
// unknown protocol, a zero port, a missing or non-IPv4 address.
var ErrBadPortMapping = errors.New("invalid port mapping")

// PortMapping is one published port: connections to HostIP:HostPort are
// sent (DNAT) to ContainerAddr:ContainerPort. Ranges are expanded into one
// mapping per port first (PortRange.Expand).
type PortMapping struct {
	Protocol      string     // "tcp" | "udp"
	HostIP        netip.Addr // zero (or 0.0.0.0): every host address, 127.0.0.1 included
	HostPort      uint16
	ContainerAddr netip.Addr
	ContainerPort uint16
	Bridge        string // the container's bridge (for hairpin masquerade)
}

// String reads as compose writes it: "127.0.0.1:8080->10.0.0.2:80/tcp".
func (m PortMapping) String() string {
	host := ""
	if !m.allAddresses() {
		host = m.HostIP.String() + ":"
	}
	return fmt.Sprintf("%s%d->%s/%s", host, m.HostPort,
		netip.AddrPortFrom(m.ContainerAddr, m.ContainerPort), m.Protocol)
}

// allAddresses reports whether the mapping listens on every host address.
func (m PortMapping) allAddresses() bool {
	return !m.HostIP.IsValid() || m.HostIP.IsUnspecified()
}

// hostIP4 is the specific IPv4 host address of the mapping; valid only when
// allAddresses is false and validate passed.
func (m PortMapping) hostIP4() netip.Addr { return m.HostIP.Unmap() }

// validate checks what a DNAT rule needs. The tables are family ip, so a
// specific host address and the container address must be IPv4.
func (m PortMapping) validate() error {
	switch {
	case m.Protocol != "tcp" && m.Protocol != "udp":
		return fmt.Errorf("%w: protocol %q (want tcp or udp)", ErrBadPortMapping, m.Protocol)
	case m.HostPort == 0:
		return fmt.Errorf("%w: host port 0", ErrBadPortMapping)
	case m.ContainerPort == 0:
		return fmt.Errorf("%w: container port 0", ErrBadPortMapping)
	case !m.ContainerAddr.Unmap().Is4():
		return fmt.Errorf("%w: container address %q is not IPv4", ErrBadPortMapping, m.ContainerAddr)
	case !m.allAddresses() && !m.HostIP.Unmap().Is4():
		return fmt.Errorf("%w: host address %s is not IPv4", ErrBadPortMapping, m.HostIP)
	}
	return nil
}

// clashes reports whether two mappings claim the same host port: same
// protocol and port, and either the same address or one of them on every
// address.
func (m PortMapping) clashes(o PortMapping) bool {
	if m.Protocol != o.Protocol || m.HostPort != o.HostPort {
		return false
	}
	return m.allAddresses() || o.allAddresses() || m.hostIP4() == o.hostIP4()
}

// CheckPorts rejects a mapping that cannot become a rule and two mappings
// claiming the same host address, port and protocol, where a mapping on
// every address clashes with any address. label(i) names the owner of
// ports[i] in the error (a service or container name), so that the user
// learns which two services to change.
func CheckPorts(ports []PortMapping, label func(i int) string) error {
	for i, m := range ports {
		if err := m.validate(); err != nil {
			return fmt.Errorf("%s: port %s: %w", label(i), m, err)
		}
		for j := range i {
			if ports[j].clashes(m) {
				return fmt.Errorf("%s: port %s: %w by %s (%s)",
					label(i), m, ErrPublishedPortConflict, label(j), ports[j])
			}
		}
	}
	return nil
}

// PortRange is a published range as compose writes it, "8000-8009:80-89":
// both ranges have the same length. A single port has First == Last.
type PortRange struct {
	Protocol       string
	HostIP         netip.Addr
	HostFirst      uint16
	HostLast       uint16
	ContainerFirst uint16
	ContainerLast  uint16
}

// Expand returns one mapping per port of the range, in order, to the
// container at addr on bridge. nftables could map a range in one rule, but
// single mappings keep CheckPorts, the rules and their listing one-to-one
// with what the user sees.
func (r PortRange) Expand(addr netip.Addr, bridge string) ([]PortMapping, error) {
	if r.HostFirst == 0 || r.HostLast < r.HostFirst || r.ContainerFirst == 0 || r.ContainerLast < r.ContainerFirst {
		return nil, fmt.Errorf("%w: range %d-%d:%d-%d", ErrBadPortMapping,
			r.HostFirst, r.HostLast, r.ContainerFirst, r.ContainerLast)
	}
	if r.HostLast-r.HostFirst != r.ContainerLast-r.ContainerFirst {
		return nil, fmt.Errorf("%w: host range %d-%d and container range %d-%d differ in length",
			ErrBadPortMapping, r.HostFirst, r.HostLast, r.ContainerFirst, r.ContainerLast)
	}
	out := make([]PortMapping, 0, int(r.HostLast-r.HostFirst)+1)
	for off := 0; off <= int(r.HostLast-r.HostFirst); off++ {
		out = append(out, PortMapping{
			Protocol:      r.Protocol,
			HostIP:        r.HostIP,
			HostPort:      r.HostFirst + uint16(off),
			ContainerAddr: addr,
			ContainerPort: r.ContainerFirst + uint16(off),
			Bridge:        bridge,
		})
	}
	if err := out[0].validate(); err != nil {
		return nil, err
	}
	return out, nil
}
