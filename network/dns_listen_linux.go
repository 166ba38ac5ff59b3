package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// ListenInNamespace opens a UDP socket and a TCP listener on addr (in
// practice 127.0.0.11:53) inside the network namespace at nsPath, for a
// Server to serve from any goroutine.
//
// A socket belongs to the namespace it was made in, for its whole life, not
// to the thread that uses it: so only the making needs to happen inside.
// That is done on a goroutine locked to its OS thread, which setns'es into
// the namespace, makes both sockets and setns'es back before unlocking. If
// it cannot get back, it stays locked and returns: the Go runtime then ends
// the thread with the goroutine (or, if it is the main thread, parks it for
// good), so no other goroutine ever runs, dials or forwards from inside the
// container's namespace by accident. Everything
// else (serving, forwarding to the host's resolvers) stays in the caller's
// namespace, the host's for a monitor.
//
// No address needs adding: inside a namespace 127.0.0.0/8 is all local to
// lo, so any 127.x address binds and answers, once lo is up. Binding works
// while lo is still down, but no packet flows until the namespace's owner
// brings it up.
func ListenInNamespace(nsPath string, addr netip.AddrPort) (pc net.PacketConn, ln net.Listener, err error) {
	type result struct {
		pc  net.PacketConn
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() { done <- r }()
		runtime.LockOSThread()
		r.pc, r.ln, r.err = dnsListenLocked(nsPath, addr)
		if !errors.Is(r.err, errDNSThreadLost) {
			runtime.UnlockOSThread()
		}
	}()
	r := <-done
	if r.err != nil {
		return nil, nil, fmt.Errorf("dns: listen on %s in netns %s: %w", addr, nsPath, r.err)
	}
	return r.pc, r.ln, nil
}

// errDNSThreadLost: the thread could not go back to its namespace and must
// die with its goroutine. The sockets, if made, are closed.
var errDNSThreadLost = errors.New("restore thread's network namespace")

// dnsListenLocked runs on a locked thread.
func dnsListenLocked(nsPath string, addr netip.AddrPort) (pc net.PacketConn, ln net.Listener, err error) {
	// The thread's own namespace, not the process's: a thread of this
	// process may already be elsewhere.
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, nil, err
	}
	defer home.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, nil, fmt.Errorf("setns: %w", err)
	}
	defer func() {
		if rerr := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); rerr != nil {
			if pc != nil {
				_ = pc.Close()
			}
			if ln != nil {
				_ = ln.Close()
			}
			pc, ln = nil, nil
			err = errors.Join(err, fmt.Errorf("%w: setns: %w", errDNSThreadLost, rerr))
		}
	}()

	udp, tcp := "udp", "tcp"
	if addr.Addr().Is4() {
		udp, tcp = "udp4", "tcp4" // an AF_INET socket, never a v4-mapped v6 one
	}
	// socket(2) and bind(2) run on this thread, in the namespace entered
	// above; the net package makes no thread of its own for a literal address.
	var lc net.ListenConfig
	pc, err = lc.ListenPacket(context.Background(), udp, addr.String())
	if err != nil {
		return nil, nil, err
	}
	ln, err = lc.Listen(context.Background(), tcp, addr.String())
	if err != nil {
		_ = pc.Close()
		return nil, nil, err
	}
	return pc, ln, nil
}
