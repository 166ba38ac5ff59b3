package project

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime"
)

// The engine's side of networking: it turns the project's network plan into
// store records, bridges, per-container network config (which the
// container's monitor applies) and the project's nftables table.

// Labels berth keeps on a container for its networking.
const (
	// labelNetworks lists the container's networks in interface order.
	labelNetworks = "berth.networks"
	// labelPorts lists its published ports, as ps shows them.
	labelPorts = "berth.ports"
)

// DefaultIfPrefix starts the names of berth's bridges and veth pairs.
const DefaultIfPrefix = "berth"

// bridgeName is the Linux bridge of a network: the interface prefix, "b",
// and a hash of the state root and the network name (IFNAMSIZ allows 15).
func (e *Engine) bridgeName(networkName string) string {
	return e.ifName("b", networkName)
}

// vethName is the host end of a container's pair on its i-th network.
func (e *Engine) vethName(container string, i int) string {
	return e.ifName("v", container+"\x00"+strconv.Itoa(i))
}

func (e *Engine) ifName(kind, key string) string {
	sum := sha256.Sum256([]byte(e.root + "\x00" + key))
	name := e.ifPrefix + kind + hex.EncodeToString(sum[:])
	return name[:15]
}

// tableName is the project's nftables table.
func tableName(project string) string { return "berth_" + project }

// ensureNetworks records and creates the bridges of the networks that the
// wanted services use. It returns the records by network key, and the
// names of the networks it created (for a rollback).
func (e *Engine) ensureNetworks(p *types.Project, nets map[string]projectNetwork, svcs map[string]serviceNet, want map[string]bool) (map[string]network.Network, []string, error) {
	used := map[string]bool{}
	for name := range want {
		for _, a := range svcs[name].Networks {
			used[a.Key] = true
		}
	}
	out := map[string]network.Network{}
	var created []string
	for _, key := range sortedKeys(used) {
		n := nets[key]
		var rec network.Network
		if n.External {
			r, err := e.networks.Network(n.Name)
			if err != nil {
				return nil, created, fmt.Errorf("networks.%s: network %s declared as external, but could not be found: create it first (another project's `berth up`)", key, n.Name)
			}
			rec = r
		} else {
			labels := map[string]string{LabelProject: p.Name, "com.docker.compose.network": key, LabelVersion: Version}
			for k, v := range n.Labels {
				labels[k] = v
			}
			r, isNew, err := e.networks.EnsureNetwork(network.Network{
				Name: n.Name, Project: p.Name, Bridge: e.bridgeName(n.Name),
				Subnet: n.Subnet, Gateway: n.Gateway, Internal: n.Internal, Labels: labels,
			})
			if err != nil {
				return nil, created, fmt.Errorf("networks.%s: %w", key, err)
			}
			if isNew {
				created = append(created, r.Name)
				e.emit(Created, fmt.Sprintf("Network %s", r.Name), "")
			}
			rec = r
		}
		if err := network.EnsureBridge(rec.Bridge, netip.PrefixFrom(rec.Gateway, rec.Subnet.Bits()), 0); err != nil {
			return nil, created, fmt.Errorf("networks.%s: %w", key, err)
		}
		// Published ports on 127.0.0.1 are translated to a container behind
		// this bridge; routing drops loopback sources there without it.
		if err := network.SetRouteLocalnet(rec.Bridge); err != nil {
			return nil, created, fmt.Errorf("networks.%s: %w", key, err)
		}
		// Where the host's iptables FORWARD chain drops forwarded traffic
		// (docker's policy, ufw), berth's own table cannot let it through.
		if err := network.EnsureForward(rec.Bridge); err != nil {
			e.warn(fmt.Sprintf("networks.%s: %v: its containers may not reach beyond their bridge", key, err))
		}
		out[key] = rec
	}
	if len(out) > 0 {
		if err := network.EnableForwarding(); err != nil {
			return nil, created, err
		}
	}
	return out, created, nil
}

// containerNetwork fills in the network side of a container's spec: the
// mode, the leases and veth pairs its monitor plugs in, its resolver, and
// the published ports (a free host port picked where none is given).
func (e *Engine) containerNetwork(spec *runtime.Spec, p *types.Project, service string, sn serviceNet, recs map[string]network.Network) (err error) {
	switch sn.Mode {
	case netHost:
		spec.HostNetwork = true
		return nil
	case netNone:
		return nil
	case netService:
		target := p.Services[sn.Target]
		spec.NetworkFrom = containerName(p.Name, target, 1)
		useResolver(spec) // the target's monitor serves it in the shared namespace
		return nil
	case netContainer:
		spec.NetworkFrom = sn.Target
		return nil
	}
	defer func() {
		if err != nil {
			e.networks.ReleaseContainer(spec.Name)
		}
	}()
	var cfg network.ContainerNetwork
	var names []string
	var first netip.Addr
	routed := false
	for i, a := range sn.Networks {
		rec := recs[a.Key]
		dnsNames := append([]string{service, spec.Name, spec.ID[:12]}, a.Aliases...)
		lease, err := e.networks.Lease(rec.Name, spec.Name, a.IPv4, dnsNames, p.Name)
		if err != nil {
			return fmt.Errorf("networks.%s: %w", a.Key, err)
		}
		att := network.Attachment{
			Bridge:   rec.Bridge,
			HostName: e.vethName(spec.Name, i),
			IfName:   "eth" + strconv.Itoa(i),
			Addr:     netip.PrefixFrom(lease.Addr, rec.Subnet.Bits()),
		}
		if i == 0 {
			first = lease.Addr
		}
		// The default route goes through the first network (by priority,
		// then name, as compose orders them) that has a way out.
		if !rec.Internal && !routed {
			att.Gateway, routed = rec.Gateway, true
		}
		cfg.Attachments = append(cfg.Attachments, att)
		names = append(names, rec.Name)
	}
	if len(cfg.Attachments) == 0 {
		return nil
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	dns, err := json.Marshal(network.ContainerDNS{Store: e.networks.Dir(), Container: spec.Name})
	if err != nil {
		return err
	}
	spec.Network, spec.DNSServer = raw, dns
	useResolver(spec)
	spec.Hosts = append(spec.Hosts, first.String()+"\t"+spec.Hostname)
	spec.Labels[labelNetworks] = strings.Join(names, ",")

	var ports []string
	for _, port := range sn.Ports {
		if port.HostPort == 0 {
			if port.HostPort, err = freePort(port); err != nil {
				return fmt.Errorf("ports: pick a host port for %d/%s: %w", port.ContainerPort, port.Protocol, err)
			}
		}
		ports = append(ports, port.label())
		spec.HoldPorts = append(spec.HoldPorts, port.hostPort())
	}
	if len(ports) > 0 {
		spec.Labels[labelPorts] = strings.Join(ports, ",")
	}
	return nil
}

// useResolver points the container's resolv.conf at berth's resolver.
func useResolver(spec *runtime.Spec) {
	spec.DNS, spec.DNSOptions = []string{network.DNSResolverIP}, []string{"ndots:0"}
}

// containerNetworks are the networks a container is on, in interface order.
func containerNetworks(c *runtime.Container) []string {
	if nets := c.Spec.Labels[labelNetworks]; nets != "" {
		return strings.Split(nets, ",")
	}
	return nil
}

// label is how a port is kept on its container: "tcp:127.0.0.1:8080:80",
// the host address empty for every address.
func (p portSpec) label() string {
	host := ""
	if p.HostIP.IsValid() {
		host = p.HostIP.String()
	}
	return fmt.Sprintf("%s:%s:%d:%d", p.Protocol, host, p.HostPort, p.ContainerPort)
}

// hostPort is the host side of p, which the container's monitor holds (a
// socket bound to it) for as long as the container runs, so that no other
// program can take it while its DNAT rule sends its traffic to the
// container.
func (p portSpec) hostPort() runtime.HostPort {
	hp := runtime.HostPort{Protocol: p.Protocol, Port: p.HostPort}
	if p.HostIP.IsValid() {
		hp.IP = p.HostIP.String()
	}
	return hp
}

// containerPorts reads a container's published ports back.
func containerPorts(c *runtime.Container) []portSpec {
	var out []portSpec
	for _, f := range strings.Split(c.Spec.Labels[labelPorts], ",") {
		parts := strings.Split(f, ":")
		if len(parts) != 4 {
			continue
		}
		hp, err1 := strconv.ParseUint(parts[2], 10, 16)
		cp, err2 := strconv.ParseUint(parts[3], 10, 16)
		if err1 != nil || err2 != nil {
			continue
		}
		ps := portSpec{Protocol: parts[0], HostPort: uint16(hp), ContainerPort: uint16(cp)}
		ps.HostIP, _ = netip.ParseAddr(parts[1])
		out = append(out, ps)
	}
	return out
}

// PortText is a container's published ports as docker compose's ps shows
// them: "0.0.0.0:8080->80/tcp, 127.0.0.1:9090->9090/tcp".
func PortText(c *runtime.Container) string {
	var parts []string
	for _, p := range containerPorts(c) {
		host := "0.0.0.0"
		if p.HostIP.IsValid() {
			host = p.HostIP.String()
		}
		parts = append(parts, fmt.Sprintf("%s:%d->%d/%s", host, p.HostPort, p.ContainerPort, p.Protocol))
	}
	return strings.Join(parts, ", ")
}

// PublishedPort is what `berth port` prints: the host address of a
// container's private port, or "" if it is not published.
func PublishedPort(c *runtime.Container, private uint16, protocol string) string {
	for _, p := range containerPorts(c) {
		if p.ContainerPort == private && p.Protocol == protocol {
			host := "0.0.0.0"
			if p.HostIP.IsValid() {
				host = p.HostIP.String()
			}
			return net.JoinHostPort(host, strconv.Itoa(int(p.HostPort)))
		}
	}
	return ""
}

// freePort asks the kernel for a free port of the protocol, as docker picks
// an ephemeral port for `ports: ["80"]`.
func freePort(p portSpec) (uint16, error) {
	host := "0.0.0.0"
	if p.HostIP.IsValid() {
		host = p.HostIP.String()
	}
	if p.Protocol == "udp" {
		c, err := net.ListenPacket("udp4", host+":0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
	}
	l, err := net.Listen("tcp4", host+":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port), nil
}

// checkPortFree fails when a program of the host holds the port: the DNAT
// rule would take its traffic away from it. It is checked before a
// container that is not running starts, to fail early with the port named
// for the user; the monitor's bind (Spec.HoldPorts) is what settles it. A
// running container's monitor holds its ports, so another project's
// container counts as a program here; the container's own ports are free,
// as its monitor released them before its exit was recorded.
func checkPortFree(p portSpec) error {
	host := "0.0.0.0"
	if p.HostIP.IsValid() {
		host = p.HostIP.String()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(p.HostPort)))
	if p.Protocol == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return fmt.Errorf("host port %d/udp is already in use (%s)", p.HostPort, addr)
		}
		return c.Close()
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return fmt.Errorf("host port %d/tcp is already in use (%s)", p.HostPort, addr)
	}
	return l.Close()
}

// applyRules rebuilds the project's nftables table from its networks and
// its running containers' published ports; with neither, the table goes.
func (e *Engine) applyRules(project string) error {
	cs, err := e.projectContainers(project)
	if err != nil {
		return err
	}
	return e.applyRulesFor(project, cs)
}

// applyRulesFor is applyRules with the project's containers already read.
func (e *Engine) applyRulesFor(project string, cs []*runtime.Container) error {
	nets, err := e.networks.Networks()
	if err != nil {
		return err
	}
	rules := network.ProjectRules{Table: tableName(project), BridgePrefix: e.ifPrefix + "b"}
	// The project's own networks, and the external ones its containers
	// are on: a published port needs its bridge's rules in this table too
	// (they are the same rules as in the owner's, which does no harm).
	used := map[string]bool{}
	for _, c := range cs {
		for _, n := range containerNetworks(c) {
			used[n] = true
		}
	}
	byName := map[string]network.Network{}
	for _, n := range nets {
		byName[n.Name] = n
		if n.Project == project || used[n.Name] {
			rules.Networks = append(rules.Networks, network.BridgeRule{Bridge: n.Bridge, Subnet: n.Subnet, Internal: n.Internal})
		}
	}
	for _, c := range cs {
		ports := containerPorts(c)
		if c.State.Status != runtime.Running || len(ports) == 0 {
			continue
		}
		leases, err := e.networks.ContainerLeases(c.Spec.Name)
		if err != nil || len(leases) == 0 {
			continue
		}
		// Ports are published on the container's first network (in its
		// interface order) that is not internal: an internal network has
		// no way in, as with docker.
		target, ok := publishLease(containerNetworks(c), leases, byName)
		if !ok {
			continue
		}
		for _, p := range ports {
			rules.Ports = append(rules.Ports, network.PortMapping{
				Protocol: p.Protocol, HostIP: p.HostIP, HostPort: p.HostPort,
				ContainerAddr: target.Addr, ContainerPort: p.ContainerPort, Bridge: byName[target.Network].Bridge,
			})
		}
	}
	if len(rules.Networks) == 0 && len(rules.Ports) == 0 {
		return network.Remove(rules.Table)
	}
	return network.Apply(rules)
}

// detachContainer deletes the host ends of a container's veth pairs.
func (e *Engine) detachContainer(c *runtime.Container) error {
	var errs []error
	for i := range containerNetworks(c) {
		errs = append(errs, network.Detach(e.vethName(c.Spec.Name, i)))
	}
	return errors.Join(errs...)
}

// Networks lists the networks recorded on this host, of every project.
func (e *Engine) Networks() ([]network.Network, error) { return e.networks.Networks() }

// publishLease picks the lease a container's ports are published on: its
// first network in order that is not internal.
func publishLease(order []string, leases []network.Lease, nets map[string]network.Network) (network.Lease, bool) {
	for _, name := range order {
		for _, l := range leases {
			if l.Network == name && !nets[name].Internal {
				return l, true
			}
		}
	}
	return network.Lease{}, false
}

// releaseContainer gives back a removed container's addresses.
func (e *Engine) releaseContainer(name string) error {
	return e.networks.ReleaseContainer(name)
}

// removeNetworks removes the project's networks that no container uses any
// more: their records, bridges and host FORWARD rules. Networks other
// projects still use stay; a lease of a container that does not exist
// (leaseHeld) keeps none. The record goes first, under the store's lock
// and only if no lease holds it, so that no container can lease an
// address on a bridge about to go; removing writes nothing.
func (e *Engine) removeNetworks(project string, only []string) error {
	nets, err := e.networks.Networks()
	if err != nil {
		return err
	}
	held := e.leaseHeld(project)
	var errs []error
	for _, n := range nets {
		if n.Project != project || (only != nil && !slices.Contains(only, n.Name)) {
			continue
		}
		leases, err := e.networks.Leases(n.Name)
		if err != nil || slices.ContainsFunc(leases, held) {
			continue
		}
		obj := fmt.Sprintf("Network %s", n.Name)
		e.emit(Removing, obj, "")
		if err := e.networks.RemoveUnusedNetwork(n.Name, held); err != nil && !errors.Is(err, network.ErrNetworkNotFound) {
			errs = append(errs, err)
			continue
		}
		if err := e.removeBridge(n.Bridge); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", n.Name, err))
			continue
		}
		e.emit(Removed, obj, "")
	}
	return errors.Join(errs...)
}
