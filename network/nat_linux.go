package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// One nftables table (family ip) per project holds every rule the project
// needs, so that `down` deletes it whole and a crash leaves one object to
// find (Tables). Apply rebuilds it from the project's current containers in
// one netlink batch, which the kernel commits as one transaction: no moment
// exists where half of the old and half of the new rules are loaded.
//
// The chains, as docker's iptables rules think them, in nft syntax (B a
// project bridge, S its subnet, P BridgePrefix):
//
//	guard        filter prerouting raw:  iifname B ip daddr 127.0.0.0/8 drop
//	prerouting   nat prerouting dstnat:  fib daddr type local ip daddr != 127.0.0.0/8
//	                                     [ip daddr HostIP] tcp dport H dnat to A:C
//	output       nat output dstnat:      fib daddr type local [ip daddr HostIP]
//	                                     tcp dport H dnat to A:C
//	postrouting  nat postrouting srcnat: ip saddr S oifname != B masquerade    (not internal)
//	                                     oifname B ip saddr 127.0.0.0/8 masquerade
//	                                     oifname B ip saddr S ct status dnat masquerade
//	forward      filter forward filter:  iifname B oifname != B drop          (internal)
//	                                     oifname B iifname != B drop          (internal)
//	                                     ct status dnat accept
//	                                     iifname B oifname P* oifname != B drop
//	                                     oifname B iifname != B ct state != established,related drop
//
// Why each one:
//   - guard: published ports on 127.0.0.1 need route_localnet=1 on the
//     bridges (see Apply), which would also let a container reach the
//     host's services on 127.0.0.1 (kube-proxy's CVE-2020-8558). Nothing
//     legitimate arrives from a bridge addressed to 127.0.0.0/8 before NAT,
//     so drop it ahead of everything. (A loopback source is refused by the
//     kernel itself, as any source that is a local address, unless
//     accept_local is set.)
//   - prerouting only for local destinations (docker's --dst-type LOCAL):
//     otherwise a container's connection to port 80 of some remote host
//     would be taken by a mapping of port 80. Never for 127.0.0.0/8 there:
//     a packet from another machine addressed to 127.0.0.1 would be
//     translated before routing could drop it as a martian, opening
//     127.0.0.1-only ports to the LAN (moby#45610). The host's own
//     connections to 127.0.0.1 pass output, not prerouting.
//   - output: connections the host itself makes to its own addresses
//     (127.0.0.1, the bridge gateways, the LAN address); everything the
//     host sends elsewhere is untouched.
//   - postrouting: outbound masquerade; loopback-sourced packets (a
//     connection to 127.0.0.1 translated to a container) get the bridge's
//     address, else the container's reply would go to its own loopback;
//     hairpin: a container that reaches its own or a sibling's published
//     port through a host address would get the reply straight from the
//     sibling's address and drop it, so the gateway's address must be the
//     source. (Where br_netfilter is loaded, conntrack also sees the
//     bridged reply and mends it; the masquerade makes both kinds of host
//     behave alike.)
//   - forward: an internal network talks to its own bridge only (DNAT or
//     not). A published port is reachable from anywhere that reaches the
//     host, other networks and projects included (as netavark, and as
//     docker's userland proxy did), so translated connections are accepted
//     before isolation. A bridge then talks to no other berth bridge (P*
//     reaches other projects' bridges too, whose table may be gone), and
//     receives from other interfaces only replies (no direct routing to
//     container addresses from the LAN, as docker 28).
//
// The forward chain's policy is accept, and an accept here does not stop a
// drop in another table: a host whose firewall drops forwarded traffic
// (ufw, firewalld, docker's FORWARD policy DROP) needs its own exception
// for the berth bridges: EnsureForward (forward_linux.go) adds them.

// ErrInvalidRules is returned by Apply for a table, network or bridge
// prefix that cannot become rules.
var ErrInvalidRules = errors.New("invalid nftables rules")

// BridgeRule is one network of the project: its bridge and subnet.
// An internal network has no way in or out but its own bridge.
type BridgeRule struct {
	Bridge   string
	Subnet   netip.Prefix
	Internal bool
}

// ProjectRules is everything Apply puts in the project's table.
type ProjectRules struct {
	Table string // "berth_<project>"; the caller picks it
	// BridgePrefix is how every berth bridge name starts (on every
	// project): traffic from the project's bridges to any interface named
	// so is dropped. Empty leaves only the inbound rule of each table.
	BridgePrefix string
	Networks     []BridgeRule // one per project network
	Ports        []PortMapping
}

// Apply replaces the project's table atomically with the rules of r. Call
// it after every change of the project's containers and networks, with all
// of them: the table then always matches what runs.
//
// The caller sets up, once per host and per bridge:
//   - net.ipv4.ip_forward=1 (EnableForwarding), for forwarding between
//     bridges and out;
//   - net.ipv4.conf.<bridge>.route_localnet=1 (SetRouteLocalnet) on every
//     bridge, else a connection to 127.0.0.1:port translated to a container
//     is dropped: routing refuses a loopback source on the way out of the
//     bridge and a loopback destination on the reply's way in. The guard
//     chain keeps that from opening the host's 127.0.0.1 to containers;
//   - hairpin mode on each bridge port (Attach sets it), so that with
//     br_netfilter loaded (whose translated packets are bridged, not
//     routed) a container reaching its own published port through a host
//     address gets its packets back out of the port they came in.
//
// Apply acts in the network namespace of the calling thread. The kernel
// needs nf_tables with nat, masq, fib_ipv4 and conntrack (modules
// nf_tables, nft_chain_nat, nft_nat, nft_masq, nft_fib_ipv4, nft_ct),
// which it loads on demand where they are modules. Published host ports
// are not reserved here: a host process listening on one is shadowed, so
// the caller checks them across projects (CheckPorts) and against the
// host's listeners.
func Apply(r ProjectRules) error {
	if err := r.validate(); err != nil {
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables table %q: netlink: %w", r.Table, err)
	}
	t := &nftables.Table{Name: r.Table, Family: nftables.TableFamilyIPv4}
	// Adding the table first makes the delete succeed when it is missing.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	for _, ch := range r.chains() {
		chain := c.AddChain(&nftables.Chain{
			Name:     ch.name,
			Table:    t,
			Type:     ch.typ,
			Hooknum:  ch.hook,
			Priority: ch.prio,
		})
		for _, rule := range ch.rules {
			c.AddRule(&nftables.Rule{
				Table:    t,
				Chain:    chain,
				Exprs:    rule.exprs,
				UserData: userdata.AppendString(nil, userdata.TypeComment, rule.comment),
			})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %q: replace: %w", r.Table, err)
	}
	return nil
}

// Remove deletes the table and all its rules; a table already gone is
// success, so that `down` always finishes.
func Remove(table string) error {
	if table == "" {
		return fmt.Errorf("remove nftables table: empty name: %w", ErrInvalidRules)
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables table %q: netlink: %w", table, err)
	}
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}
	c.AddTable(t) // as in Apply: the delete then never fails with ENOENT
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %q: delete: %w", table, err)
	}
	return nil
}

// Tables lists the names of the ip-family tables whose name starts with
// prefix, for cleaning up after a crash.
func Tables(prefix string) ([]string, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: netlink: %w", err)
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("nftables: list tables: %w", err)
	}
	var names []string
	for _, t := range ts {
		if strings.HasPrefix(t.Name, prefix) {
			names = append(names, t.Name)
		}
	}
	return names, nil
}

// validate rejects what the kernel would reject less clearly, and what
// would silently match nothing.
func (r ProjectRules) validate() error {
	if r.Table == "" || len(r.Table) >= unix.NFT_TABLE_MAXNAMELEN {
		return fmt.Errorf("nftables table %q: name must have 1 to %d bytes: %w",
			r.Table, unix.NFT_TABLE_MAXNAMELEN-1, ErrInvalidRules)
	}
	if len(r.BridgePrefix) >= unix.IFNAMSIZ {
		return fmt.Errorf("nftables table %q: bridge prefix %q is longer than an interface name: %w",
			r.Table, r.BridgePrefix, ErrInvalidRules)
	}
	subnets := make(map[string]netip.Prefix, len(r.Networks))
	for _, n := range r.Networks {
		switch {
		case n.Bridge == "" || len(n.Bridge) >= unix.IFNAMSIZ:
			return fmt.Errorf("nftables table %q: bridge name %q must have 1 to %d bytes: %w",
				r.Table, n.Bridge, unix.IFNAMSIZ-1, ErrInvalidRules)
		case !n.Subnet.IsValid() || !n.Subnet.Addr().Is4():
			return fmt.Errorf("nftables table %q: bridge %q: subnet %s is not IPv4: %w",
				r.Table, n.Bridge, n.Subnet, ErrInvalidRules)
		}
		if _, dup := subnets[n.Bridge]; dup {
			return fmt.Errorf("nftables table %q: bridge %q listed twice: %w", r.Table, n.Bridge, ErrInvalidRules)
		}
		subnets[n.Bridge] = n.Subnet.Masked()
	}
	err := CheckPorts(r.Ports, func(i int) string {
		return fmt.Sprintf("nftables table %q: mapping %d", r.Table, i)
	})
	if err != nil {
		return err
	}
	for _, m := range r.Ports {
		subnet, ok := subnets[m.Bridge]
		if !ok {
			return fmt.Errorf("nftables table %q: port %s: bridge %q is not a network of the project: %w",
				r.Table, m, m.Bridge, ErrBadPortMapping)
		}
		if !subnet.Contains(m.ContainerAddr.Unmap()) {
			return fmt.Errorf("nftables table %q: port %s: address outside %s of bridge %q: %w",
				r.Table, m, subnet, m.Bridge, ErrBadPortMapping)
		}
	}
	return nil
}

// natChain is one chain of the table with its rules, in order.
type natChain struct {
	name  string
	typ   nftables.ChainType
	hook  *nftables.ChainHook
	prio  *nftables.ChainPriority
	rules []natRule
}

// natRule is one rule; the comment shows in `nft list table ip NAME`.
type natRule struct {
	comment string
	exprs   []expr.Any
}

// chains builds the whole table (see the top of this file); r is valid.
func (r ProjectRules) chains() []natChain {
	guard := natChain{name: "guard", typ: nftables.ChainTypeFilter,
		hook: nftables.ChainHookPrerouting, prio: nftables.ChainPriorityRaw}
	pre := natChain{name: "prerouting", typ: nftables.ChainTypeNAT,
		hook: nftables.ChainHookPrerouting, prio: nftables.ChainPriorityNATDest}
	out := natChain{name: "output", typ: nftables.ChainTypeNAT,
		hook: nftables.ChainHookOutput, prio: nftables.ChainPriorityNATDest}
	post := natChain{name: "postrouting", typ: nftables.ChainTypeNAT,
		hook: nftables.ChainHookPostrouting, prio: nftables.ChainPriorityNATSource}
	fwd := natChain{name: "forward", typ: nftables.ChainTypeFilter,
		hook: nftables.ChainHookForward, prio: nftables.ChainPriorityFilter}

	loopback := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 0, 0, 0}), 8)
	add := func(c *natChain, comment string, parts ...[]expr.Any) {
		var exprs []expr.Any
		for _, p := range parts {
			exprs = append(exprs, p...)
		}
		c.rules = append(c.rules, natRule{comment: comment, exprs: exprs})
	}
	drop := []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
	accept := []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
	masq := []expr.Any{&expr.Masq{}}

	for _, n := range r.Networks {
		in := natIfname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge)
		add(&guard, "no loopback destination from "+n.Bridge, in, natAddrIn(natDaddr, loopback, expr.CmpOpEq), drop)
	}

	for _, m := range r.Ports {
		match := natL4Port(m.Protocol, m.HostPort)
		to := natDNAT(m.ContainerAddr, m.ContainerPort)
		comment := "published " + m.String()
		if m.allAddresses() {
			add(&pre, comment, natFibDaddrLocal(), natAddrIn(natDaddr, loopback, expr.CmpOpNeq), match, to)
			add(&out, comment, natFibDaddrLocal(), match, to)
			continue
		}
		host := natAddrIn(natDaddr, netip.PrefixFrom(m.hostIP4(), 32), expr.CmpOpEq)
		if !m.hostIP4().IsLoopback() {
			add(&pre, comment, natFibDaddrLocal(), host, match, to)
		}
		add(&out, comment, natFibDaddrLocal(), host, match, to)
	}

	for _, n := range r.Networks {
		outB := natIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge)
		src := natAddrIn(natSaddr, n.Subnet, expr.CmpOpEq)
		if !n.Internal {
			add(&post, "outbound from "+n.Bridge, src,
				natIfname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), masq)
		}
		add(&post, "published on loopback to "+n.Bridge, outB, natAddrIn(natSaddr, loopback, expr.CmpOpEq), masq)
		add(&post, "hairpin on "+n.Bridge, outB, src, natCtStatusDNAT(), masq)
	}

	for _, n := range r.Networks {
		if !n.Internal {
			continue
		}
		add(&fwd, "internal "+n.Bridge+": no way out",
			natIfname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge),
			natIfname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), drop)
		add(&fwd, "internal "+n.Bridge+": no way in",
			natIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge),
			natIfname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, n.Bridge), drop)
	}
	add(&fwd, "published ports", natCtStatusDNAT(), accept)
	for _, n := range r.Networks {
		if n.Internal {
			continue
		}
		if r.BridgePrefix != "" {
			add(&fwd, n.Bridge+": to no other bridge",
				natIfname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge),
				natIfnamePrefix(expr.MetaKeyOIFNAME, r.BridgePrefix),
				natIfname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), drop)
		}
		add(&fwd, n.Bridge+": only replies from elsewhere",
			natIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge),
			natIfname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, n.Bridge),
			natCtStateNotReply(), drop)
	}
	return []natChain{guard, pre, out, post, fwd}
}

// Offsets of the addresses in the IPv4 header.
const (
	natSaddr = 12
	natDaddr = 16
)

// natIPSDstNAT is IPS_DST_NAT of the conntrack status bits
// (linux/netfilter/nf_conntrack_common.h), set on connections that a DNAT
// rule translated.
const natIPSDstNAT = 1 << 5

// natIfname matches an interface name exactly; the kernel compares all
// IFNAMSIZ bytes, as nft does.
func natIfname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: b},
	}
}

// natIfnamePrefix matches names starting with prefix (nft's "prefix*"):
// the comparison covers the prefix's bytes only.
func natIfnamePrefix(key expr.MetaKey, prefix string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(prefix)},
	}
}

// natAddrIn matches the address at offset (natSaddr, natDaddr) against p.
func natAddrIn(offset uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	p = p.Masked()
	addr := p.Addr().As4()
	exprs := []expr.Any{&expr.Payload{
		DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4,
	}}
	if p.Bits() < 32 {
		exprs = append(exprs, &expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: net.CIDRMask(p.Bits(), 32), Xor: make([]byte, 4),
		})
	}
	return append(exprs, &expr.Cmp{Op: op, Register: 1, Data: addr[:]})
}

// natL4Port matches "tcp dport port" or "udp dport port".
func natL4Port(protocol string, port uint16) []expr.Any {
	proto := byte(unix.IPPROTO_TCP)
	if protocol == "udp" {
		proto = unix.IPPROTO_UDP
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// natFibDaddrLocal matches "fib daddr type local": the destination is an
// address of this host.
func natFibDaddrLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// natCtStatusDNAT matches "ct status dnat".
func natCtStatusDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(natIPSDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// natCtStateNotReply matches "ct state != established,related": a packet
// that opens a connection rather than answering one.
func natCtStateNotReply() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)},
	}
}

// natDNAT is "dnat to addr:port".
func natDNAT(addr netip.Addr, port uint16) []expr.Any {
	a := addr.Unmap().As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
			RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}
