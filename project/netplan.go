package project

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// What a project's networking needs, decided from the file alone: a pure
// function of the project, tested as values. The engine then makes it real
// with the network package.

// netMode is how a service's containers see the network.
type netMode int

const (
	// netBridge: a namespace of its own on the project's bridges (the default).
	netBridge netMode = iota
	// netHost: the host's namespace (network_mode: host).
	netHost
	// netNone: a namespace with loopback only (network_mode: none).
	netNone
	// netService: another service's namespace (network_mode: service:NAME).
	netService
	// netContainer: a named container's namespace (network_mode: container:NAME).
	netContainer
)

// projectNetwork is one network of the project as the engine creates it.
type projectNetwork struct {
	Key  string // the key in the file: "default", "back"
	Name string // host-wide: "<project>_back", or the external name
	// Subnet is the declared ipam subnet; invalid (zero) when berth picks one.
	Subnet   netip.Prefix
	Gateway  netip.Addr
	Internal bool
	External bool
	Labels   map[string]string
}

// serviceNet is the networking of one service.
type serviceNet struct {
	Mode netMode
	// Target is the service (netService) or container (netContainer) whose
	// namespace is shared.
	Target   string
	Networks []serviceAttachment // in docker's order: priority, then name
	Ports    []portSpec
}

// serviceAttachment is a service's membership of one network.
type serviceAttachment struct {
	Key     string
	Aliases []string
	IPv4    netip.Addr // ipv4_address; zero: any
}

// portSpec is one published port of a service, before a container has an
// address.
type portSpec struct {
	Protocol      string
	HostIP        netip.Addr // zero: every host address
	HostPort      uint16     // 0: a free port picked at start, as docker does
	ContainerPort uint16
}

func (p portSpec) String() string {
	host := ""
	if p.HostIP.IsValid() {
		host = p.HostIP.String() + ":"
	}
	return fmt.Sprintf("%s%d->%d/%s", host, p.HostPort, p.ContainerPort, p.Protocol)
}

// planNetworks reads the project's networks and each service's networking,
// and checks what can be checked without the host: drivers, subnets that
// overlap, ipv4_address outside its subnet, two services on one host port.
func planNetworks(p *types.Project) (map[string]projectNetwork, map[string]serviceNet, error) {
	nets := map[string]projectNetwork{}
	for _, key := range sortedKeys(p.Networks) {
		cfg := p.Networks[key]
		n, err := plannedNetwork(key, cfg)
		if err != nil {
			return nil, nil, err
		}
		nets[key] = n
	}
	keys := sortedKeys(nets)
	for i, a := range keys {
		for _, b := range keys[i+1:] {
			na, nb := nets[a], nets[b]
			if na.Subnet.IsValid() && nb.Subnet.IsValid() && na.Subnet.Overlaps(nb.Subnet) {
				return nil, nil, fmt.Errorf("networks %q and %q overlap: %s and %s", a, b, na.Subnet, nb.Subnet)
			}
		}
	}

	services := map[string]serviceNet{}
	for _, name := range sortedKeys(p.Services) {
		s := p.Services[name]
		sn, err := plannedServiceNet(s, nets)
		if err != nil {
			return nil, nil, serviceError(name, err)
		}
		services[name] = sn
	}
	if err := checkPortClashes(services); err != nil {
		return nil, nil, err
	}
	return nets, services, nil
}

func plannedNetwork(key string, cfg types.NetworkConfig) (projectNetwork, error) {
	n := projectNetwork{Key: key, Name: cfg.Name, Internal: cfg.Internal, External: bool(cfg.External), Labels: cfg.Labels}
	if n.Name == "" {
		n.Name = key
	}
	if cfg.Driver != "" && cfg.Driver != "bridge" {
		return n, fmt.Errorf("networks.%s: driver %q is not supported (only bridge)", key, cfg.Driver)
	}
	if len(cfg.Ipam.Config) > 1 {
		return n, fmt.Errorf("networks.%s.ipam.config: one subnet per network is supported", key)
	}
	for _, pool := range cfg.Ipam.Config {
		if pool.Subnet == "" {
			continue
		}
		subnet, err := netip.ParsePrefix(pool.Subnet)
		if err != nil || !subnet.Addr().Is4() {
			return n, fmt.Errorf("networks.%s.ipam.config.subnet: %q is not an IPv4 subnet", key, pool.Subnet)
		}
		n.Subnet = subnet.Masked()
		if subnet.Bits() > 30 {
			return n, fmt.Errorf("networks.%s.ipam.config.subnet: %s is too small for a gateway and a container", key, subnet)
		}
		n.Gateway = n.Subnet.Addr().Next()
		if pool.Gateway != "" {
			gw, err := netip.ParseAddr(pool.Gateway)
			if err != nil || !n.Subnet.Contains(gw) {
				return n, fmt.Errorf("networks.%s.ipam.config.gateway: %q is not an address of %s", key, pool.Gateway, n.Subnet)
			}
			n.Gateway = gw
		}
	}
	return n, nil
}

func plannedServiceNet(s types.ServiceConfig, nets map[string]projectNetwork) (serviceNet, error) {
	var sn serviceNet
	mode := s.NetworkMode
	switch {
	case mode == "host":
		sn.Mode = netHost
	case mode == "none":
		sn.Mode = netNone
	case strings.HasPrefix(mode, "service:"):
		sn.Mode, sn.Target = netService, strings.TrimPrefix(mode, "service:")
	case strings.HasPrefix(mode, "container:"):
		sn.Mode, sn.Target = netContainer, strings.TrimPrefix(mode, "container:")
	case mode == "" || mode == "bridge" || mode == "default":
		sn.Mode = netBridge
	default:
		return sn, fmt.Errorf("network_mode: %q is not supported (host, none, service:NAME, container:NAME)", mode)
	}
	if sn.Mode != netBridge && len(s.Ports) > 0 {
		if sn.Mode == netHost {
			return sn, fmt.Errorf("ports: a service with network_mode host publishes nothing (its ports are the host's)")
		}
		return sn, fmt.Errorf("ports: cannot publish ports with network_mode %q: publish them on the service that owns the namespace", mode)
	}
	if sn.Mode == netBridge {
		keys := sortedKeys(s.Networks)
		sort.SliceStable(keys, func(i, j int) bool {
			return priority(s.Networks[keys[i]]) > priority(s.Networks[keys[j]])
		})
		for _, key := range keys {
			n, ok := nets[key]
			if !ok {
				return sn, fmt.Errorf("networks: undefined network %q", key)
			}
			a := serviceAttachment{Key: key}
			if cfg := s.Networks[key]; cfg != nil {
				a.Aliases = slices.Clone(cfg.Aliases)
				if cfg.Ipv4Address != "" {
					addr, err := netip.ParseAddr(cfg.Ipv4Address)
					if err != nil || !addr.Is4() {
						return sn, fmt.Errorf("networks.%s.ipv4_address: %q is not an IPv4 address", key, cfg.Ipv4Address)
					}
					if !n.Subnet.IsValid() {
						return sn, fmt.Errorf("networks.%s.ipv4_address: %s needs a subnet declared in networks.%s.ipam.config", key, addr, key)
					}
					if !n.Subnet.Contains(addr) || addr == n.Subnet.Addr() || addr == n.Gateway {
						return sn, fmt.Errorf("networks.%s.ipv4_address: %s is outside the subnet %s of network %q (or is its gateway)", key, addr, n.Subnet, key)
					}
					if s.GetScale() > 1 {
						return sn, fmt.Errorf("networks.%s.ipv4_address: a fixed address cannot go to %d replicas", key, s.GetScale())
					}
					a.IPv4 = addr
				}
			}
			sn.Networks = append(sn.Networks, a)
		}
	}
	for i, port := range s.Ports {
		ps, err := plannedPort(port)
		if err != nil {
			return sn, fmt.Errorf("ports[%d]: %w", i, err)
		}
		if ps.HostPort != 0 && s.GetScale() > 1 {
			return sn, fmt.Errorf("ports[%d]: host port %d cannot be published by %d replicas", i, ps.HostPort, s.GetScale())
		}
		sn.Ports = append(sn.Ports, ps)
	}
	return sn, nil
}

func priority(c *types.ServiceNetworkConfig) int {
	if c == nil {
		return 0
	}
	return c.Priority
}

func plannedPort(p types.ServicePortConfig) (portSpec, error) {
	ps := portSpec{Protocol: strings.ToLower(p.Protocol)}
	if ps.Protocol == "" {
		ps.Protocol = "tcp"
	}
	if ps.Protocol != "tcp" && ps.Protocol != "udp" {
		return ps, fmt.Errorf("protocol %q is not supported (tcp or udp)", p.Protocol)
	}
	if p.Target == 0 || p.Target > 65535 {
		return ps, fmt.Errorf("container port %d is out of range", p.Target)
	}
	ps.ContainerPort = uint16(p.Target)
	if p.HostIP != "" {
		ip, err := netip.ParseAddr(p.HostIP)
		if err != nil || !ip.Is4() {
			return ps, fmt.Errorf("host_ip %q is not an IPv4 address", p.HostIP)
		}
		if !ip.IsUnspecified() {
			ps.HostIP = ip
		}
	}
	if p.Published != "" {
		if strings.Contains(p.Published, "-") {
			return ps, fmt.Errorf("published range %q must map to a range of the same size", p.Published)
		}
		n, err := strconv.ParseUint(p.Published, 10, 16)
		if err != nil || n == 0 {
			return ps, fmt.Errorf("published port %q is not a port number", p.Published)
		}
		ps.HostPort = uint16(n)
	}
	return ps, nil
}

// checkPortClashes rejects two services publishing one host port (a port
// on every address clashes with the same port on any one address).
func checkPortClashes(services map[string]serviceNet) error {
	type owner struct {
		service string
		port    portSpec
	}
	var seen []owner
	for _, name := range sortedKeys(services) {
		for _, p := range services[name].Ports {
			if p.HostPort == 0 {
				continue
			}
			for _, o := range seen {
				sameAddr := !o.port.HostIP.IsValid() || !p.HostIP.IsValid() || o.port.HostIP == p.HostIP
				if o.port.HostPort == p.HostPort && o.port.Protocol == p.Protocol && sameAddr {
					if o.service == name {
						return fmt.Errorf("service %q: ports: host port %d/%s is published twice", name, p.HostPort, p.Protocol)
					}
					return fmt.Errorf("services %q and %q both publish host port %d/%s", o.service, name, p.HostPort, p.Protocol)
				}
			}
			seen = append(seen, owner{name, p})
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
