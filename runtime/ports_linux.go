package runtime

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// A published port is an nftables DNAT rule, and a rule owns no address:
// without more, another program of the host could bind a published port,
// and which of the two a connection reaches would depend on the rules, not
// on either program. So the monitor holds each published address with a
// socket of its own, from the start of the container to its final exit
// (Spec.HoldPorts), and the other program's bind fails with "address
// already in use", as with docker. Connections never reach these sockets:
// nftables translates them first.
//
// How the sockets are made, after docker's (moby's port allocator, which
// keeps them when its userland proxy is off) and not podman's:
//
//   - TCP: SO_REUSEADDR, a filter that drops every packet, bind, listen.
//     SO_REUSEADDR, as every server sets it, because without it a bind
//     fails while the port has connections in TIME_WAIT, up to a minute
//     after the program that had it (a dev server the user just stopped)
//     is gone. But the kernel lets two SO_REUSEADDR sockets share a port
//     as long as neither listens: a socket that only binds would stop no
//     server. A listening one stops every other bind of the port (on its
//     address, and on any address when it holds the wildcard), bar
//     SO_REUSEPORT, which it does not set. Listening would complete
//     handshakes into an accept queue that nothing reads; the filter drops
//     every SYN instead, so a connection that no rule translates (before
//     the engine applies the rules, after a down removed them) is never
//     accepted by the monitor: its client retransmits and times out, where
//     podman's plain listeners (net.ListenTCP handed to conmon) leave it
//     hanging, connected to nothing. The socket shows in `ss -ltnp`, which
//     is where a user looks for who holds a port.
//   - UDP: a drop-all filter, bind, without SO_REUSEADDR, which would let
//     another SO_REUSEADDR socket share the port (UDP has no listening
//     state, and no TIME_WAIT to wait out). The filter keeps the socket
//     from queueing, for a reader that never comes, what no rule
//     translated.
//
// The sockets are SOCK_CLOEXEC, so no exec of the monitor (the container's
// init, an exec, a healthcheck) inherits them; the init also marks every
// descriptor from 3 on close-on-exec before it execs the container's
// process (closeExecFrom). They are opened by the monitor's main thread,
// which is in the host's network namespace, before the first run.

// heldPorts are the sockets that hold a container's published ports.
type heldPorts []int

// holdPorts binds a socket on each of ports. On failure none stays open:
// the error names the first address that could not be bound
// ("bind 0.0.0.0:8080/tcp: address already in use").
func holdPorts(ports []HostPort) (held heldPorts, err error) {
	defer func() {
		if err != nil {
			held.release()
			held = nil
		}
	}()
	for _, p := range ports {
		fd, err := holdPort(p)
		if err != nil {
			return held, err
		}
		held = append(held, fd)
	}
	return held, nil
}

// release closes the sockets: the ports are free for anyone after it.
func (h heldPorts) release() {
	for _, fd := range h {
		unix.Close(fd)
	}
}

func holdPort(p HostPort) (fd int, err error) {
	name := hostPortString(p)
	var typ int
	switch p.Protocol {
	case "tcp":
		typ = unix.SOCK_STREAM
	case "udp":
		typ = unix.SOCK_DGRAM
	default:
		return -1, fmt.Errorf("hold port %s: protocol %q is not tcp or udp", name, p.Protocol)
	}
	if p.Port == 0 {
		return -1, fmt.Errorf("hold port %s: no port number", name)
	}
	domain, sa, err := hostPortSockaddr(p)
	if err != nil {
		return -1, fmt.Errorf("hold port %s: %w", name, err)
	}
	fd, err = unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("hold port %s: socket: %w", name, err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	if domain == unix.AF_INET6 {
		// The address given, not its IPv4 twin as well.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return -1, fmt.Errorf("hold port %s: setsockopt IPV6_V6ONLY: %w", name, err)
		}
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return -1, fmt.Errorf("hold port %s: setsockopt SO_REUSEADDR: %w", name, err)
		}
	}
	// Before the bind: nothing is ever queued, not a datagram, not a SYN.
	if err := dropAll(fd); err != nil {
		return -1, fmt.Errorf("hold port %s: %w", name, err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return -1, fmt.Errorf("bind %s: %w", name, err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, 1); err != nil {
			return -1, fmt.Errorf("listen %s: %w", name, err)
		}
	}
	return fd, nil
}

// dropAll attaches a classic BPF program of one instruction, "return 0",
// which drops every packet the socket would receive (socket(7),
// SO_ATTACH_FILTER): a SYN to a listener, a datagram.
func dropAll(fd int) error {
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
	if err != nil {
		return fmt.Errorf("setsockopt SO_ATTACH_FILTER: %w", err)
	}
	return nil
}

// hostPortSockaddr is the address to bind for p: every IPv4 address when
// its IP is empty.
func hostPortSockaddr(p HostPort) (int, unix.Sockaddr, error) {
	if p.IP == "" {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(p.Port)}, nil
	}
	ip, err := netip.ParseAddr(p.IP)
	if err != nil || ip.Zone() != "" {
		return 0, nil, errors.New("not an IP address")
	}
	if ip.Is4() || ip.Is4In6() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(p.Port), Addr: ip.Unmap().As4()}, nil
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(p.Port), Addr: ip.As16()}, nil
}

// hostPortString is p as the errors name it: "0.0.0.0:8080/tcp".
func hostPortString(p HostPort) string {
	ip := p.IP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(p.Port))) + "/" + p.Protocol
}
