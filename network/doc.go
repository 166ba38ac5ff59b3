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
//   - Each container gets a network namespace made before it starts and kept
//     at a path (netns.go), so that it outlives restarts of the container's
//     process and the runtime only joins it. A veth pair per network links
//     it to the bridge (bridge_linux.go, veth_linux.go).
//   - Each project has an nftables table of its own (nat_linux.go): outbound
//     masquerade, isolation between networks and between projects, no way
//     out for internal networks, and published ports as DNAT rules — the
//     kernel's fast path, no user-space copy. `down` deletes the table whole.
//   - Service names are answered by a DNS server inside each container's
//     namespace (127.0.0.11, as docker), run by the container's monitor with
//     the handler of dns.go, which reads the leases afresh so answers follow
//     containers as they come and go. Other names go to the host's resolvers.
package network
