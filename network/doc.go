// Package network will own berth's private virtual networks: Linux bridges
// per project network, a veth pair per container, persisted IPAM leases,
// outbound NAT, service-name DNS answered by each container's monitor, and
// published ports as nftables DNAT rules (see ../shared/DESIGN.md).
//
// Until it lands, a container has its own network namespace with only its
// loopback interface, which the container's init brings up; compose keys
// about networks and ports are reported as unsupported when a project loads.
package network
