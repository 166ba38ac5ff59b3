// Package network owns berth's private virtual networks on one host. It
// knows nothing of compose files: the project package decides what each
// container needs and passes plain values here.
//
// The model (CNI-like, no daemon):
//
//   - Each compose network is a Linux bridge with a gateway address and a
//     subnet, recorded in a store under BERTH_ROOT/networks together with
//     the address leases of the containers attached to it (ipam.go,
//     store.go). A declared ipam subnet is honoured; otherwise a free one is
//     picked from an address pool, clashing with no host route.
//   - Each container's network namespace is made by the clone that starts
//     its process; before the process runs, its monitor plugs it in with
//     SetupContainerNetwork (container.go): a veth pair per network
//     (bridge_linux.go, veth_linux.go), eth0 first, the default route through
//     the first network with a way out. Everything in the namespace goes with
//     it, so a killed container leaves nothing; its leases stay until it is
//     removed, and a restart plugs a new namespace in with the same
//     addresses. (netns.go keeps namespaces at a path, for tests and tools.)
//   - Each project has an nftables table of its own (nat_linux.go): outbound
//     masquerade, isolation between networks and between projects, no way
//     out for internal networks, and published ports as DNAT rules — the
//     kernel's fast path, no user-space copy. `down` deletes the table whole.
//     Where the host's iptables FORWARD chain drops forwarded traffic
//     (docker, ufw), each bridge also gets accept rules there
//     (forward_linux.go), removed with the bridge.
//   - Service names are answered by a DNS server inside each container's
//     namespace (127.0.0.11, as docker), run by the container's monitor
//     (StartContainerDNS, dns_container.go) with the handler of dns.go, which
//     reads the leases afresh so answers follow containers as they come and
//     go. Other names go to the host's resolvers, from the host's namespace.
//
// The monitor is the runtime's; it reaches this package through the two
// roles main plugs in (runtime.Roles), so runtime and network never import
// each other.
package network
