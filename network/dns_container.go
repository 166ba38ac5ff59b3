package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// resolverAddr is where a container's resolver listens inside its
// namespace, as docker's embedded DNS.
var resolverAddr = netip.AddrPortFrom(netip.MustParseAddr(DNSResolverIP), DNSPort)

// ContainerDNS is the configuration of one container's resolver, carried in
// the container's spec from the engine to its monitor.
type ContainerDNS struct {
	// Store is the folder of the network store whose leases are the names.
	Store string `json:"store"`
	// Container is the asking container: it sees the names of the networks
	// it has a lease on, and no others.
	Container string `json:"container"`
	// ResolvConf is where the host's resolvers are read ("" : /etc/resolv.conf).
	ResolvConf string `json:"resolvConf,omitempty"`
}

// StartContainerDNS binds the resolver of a container inside its network
// namespace and serves it until the returned Closer is closed. It is the
// monitor's resolver role (runtime.Roles.StartDNS).
func StartContainerDNS(netns string, config json.RawMessage) (io.Closer, error) {
	var cfg ContainerDNS
	if err := json.Unmarshal(config, &cfg); err != nil {
		return nil, fmt.Errorf("dns config: %w", err)
	}
	store, err := OpenStore(cfg.Store)
	if err != nil {
		return nil, err
	}
	resolv := cfg.ResolvConf
	if resolv == "" {
		resolv = "/etc/resolv.conf"
	}
	// No upstream is not fatal: the project's names still resolve.
	upstreams, _ := HostResolvers(resolv)
	pc, ln, err := ListenInNamespace(netns, resolverAddr)
	if err != nil {
		return nil, err
	}
	srv := &Server{Records: leaseRecords{store: store, container: cfg.Container}, Upstreams: upstreams}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningDNS{cancel: cancel, pc: pc, ln: ln}
	r.wg.Add(2)
	go func() { defer r.wg.Done(); srv.ServeUDP(ctx, pc) }()
	go func() { defer r.wg.Done(); srv.ServeTCP(ctx, ln) }()
	return r, nil
}

type runningDNS struct {
	cancel context.CancelFunc
	pc     net.PacketConn
	ln     net.Listener
	wg     sync.WaitGroup
}

func (r *runningDNS) Close() error {
	r.cancel()
	err := errors.Join(r.pc.Close(), r.ln.Close())
	r.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// leaseRecords answers from the store's leases, read afresh on each query:
// names on the networks the asking container shares with their owners.
type leaseRecords struct {
	store     *Store
	container string
}

// shared returns the leases of the networks the asking container is on,
// reading each network's leases once per query.
func (r leaseRecords) shared() []Lease {
	names, err := r.store.networkNames()
	if err != nil {
		return nil
	}
	var out []Lease
	for _, n := range names {
		leases, err := r.store.readLeases(n)
		if err == nil && slices.ContainsFunc(leases, func(l Lease) bool { return l.Container == r.container }) {
			out = append(out, leases...)
		}
	}
	return out
}

func (r leaseRecords) Lookup(name string) ([]netip.Addr, bool) {
	var addrs []netip.Addr
	for _, l := range r.shared() {
		if slices.ContainsFunc(l.Names, func(n string) bool { return strings.EqualFold(n, name) }) && !slices.Contains(addrs, l.Addr) {
			addrs = append(addrs, l.Addr)
		}
	}
	return addrs, len(addrs) > 0
}

func (r leaseRecords) Reverse(addr netip.Addr) ([]string, bool) {
	for _, l := range r.shared() {
		if l.Addr == addr {
			return []string{l.Container}, true
		}
	}
	return nil, false
}
