package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// freeHostPort is a port of the protocol that no program of the host holds
// now, on any address.
func freeHostPort(t *testing.T, protocol string) uint16 {
	t.Helper()
	if protocol == "udp" {
		c, err := net.ListenPacket("udp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return uint16(c.LocalAddr().(*net.UDPAddr).Port)
	}
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// bindAs tries what another program would do with a port: bind it (Go's
// listeners set SO_REUSEADDR), on a given address, the wildcard, and, for
// TCP, the dual-stack wildcard. It returns each attempt's error; a port 0
// is not tried.
func bindAs(tcpPort, udpPort uint16) map[string]error {
	errs := map[string]error{}
	for _, a := range []struct {
		network, addr string
		port          uint16
	}{
		{"tcp4", "127.0.0.1", tcpPort},
		{"tcp4", "0.0.0.0", tcpPort},
		{"tcp", "", tcpPort},
		{"udp4", "127.0.0.1", udpPort},
		{"udp4", "0.0.0.0", udpPort},
	} {
		if a.port == 0 {
			continue
		}
		a.addr = net.JoinHostPort(a.addr, strconv.Itoa(int(a.port)))
		var c interface{ Close() error }
		var err error
		if strings.HasPrefix(a.network, "udp") {
			c, err = net.ListenPacket(a.network, a.addr)
		} else {
			c, err = net.Listen(a.network, a.addr)
		}
		if err == nil {
			c.Close()
		}
		errs[a.network+" "+a.addr] = err
	}
	return errs
}

// checkPortsHeld fails unless every other bind of the ports fails with
// EADDRINUSE.
func checkPortsHeld(t *testing.T, tcpPort, udpPort uint16) {
	t.Helper()
	for what, err := range bindAs(tcpPort, udpPort) {
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("listen %s: %v, want address already in use", what, err)
		}
	}
}

// checkPortsFree fails unless another program can bind the ports.
func checkPortsFree(t *testing.T, tcpPort, udpPort uint16) {
	t.Helper()
	for what, err := range bindAs(tcpPort, udpPort) {
		if err != nil {
			t.Errorf("listen %s: %v, want the port free", what, err)
		}
	}
}

// udpDrops is the drop count of the UDP socket bound to port on 127.0.0.1,
// from /proc/net/udp (-1: no such socket).
func udpDrops(t *testing.T, port uint16) int {
	t.Helper()
	data, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) > 12 && f[1] == local {
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				t.Fatalf("/proc/net/udp: %q", line)
			}
			return n
		}
	}
	return -1
}

// TestHoldPorts: the sockets hold the ports against every other bind, are
// close-on-exec, take no traffic, and let the ports go on release; a port
// already taken fails the whole with the address named, and nothing held.
func TestHoldPorts(t *testing.T) {
	tcpPort, udpPort := freeHostPort(t, "tcp"), freeHostPort(t, "udp")
	held, err := holdPorts([]HostPort{{Protocol: "tcp", Port: tcpPort}, {Protocol: "udp", IP: "127.0.0.1", Port: udpPort}})
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			held.release()
		}
	}()
	if len(held) != 2 {
		t.Fatalf("%d sockets, want 2", len(held))
	}
	for _, fd := range held {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("fd %d: flags %#x (%v), want close-on-exec", fd, flags, err)
		}
	}
	checkPortsHeld(t, tcpPort, udpPort)

	// A connection that no rule translates is never accepted: the SYN is
	// dropped, and the handshake does not complete.
	if c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", tcpPort), 300*time.Millisecond); err == nil {
		c.Close()
		t.Error("a connection to the held TCP port was accepted")
	} else if ne := net.Error(nil); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("connect to the held TCP port: %v, want a timeout", err)
	}
	// A datagram is dropped by the socket's filter, not queued.
	c, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", udpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for udpDrops(t, udpPort) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the datagram was not dropped: drops %d", udpDrops(t, udpPort))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n, _, err := unix.Recvfrom(held[1], make([]byte, 16), unix.MSG_DONTWAIT); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("read from the held UDP socket: %d bytes, %v; want nothing queued", n, err)
	}

	held.release()
	released = true
	checkPortsFree(t, tcpPort, udpPort)

	// Taken by another program on one address: the wildcard cannot be held.
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", tcpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held, err = holdPorts([]HostPort{{Protocol: "udp", Port: udpPort}, {Protocol: "tcp", IP: "0.0.0.0", Port: tcpPort}})
	if err == nil {
		held.release()
		t.Fatal("holding a taken port succeeded")
	}
	if want := fmt.Sprintf("bind 0.0.0.0:%d/tcp: address already in use", tcpPort); err.Error() != want || !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("error %q, want %q", err, want)
	}
	if held != nil {
		t.Errorf("sockets %v returned with the error", held)
	}
	// The UDP port bound before the failure was let go.
	pc, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", udpPort))
	if err != nil {
		t.Errorf("the UDP port is still held after the failure: %v", err)
	} else {
		pc.Close()
	}

	// A port that a program gone a moment ago leaves in TIME_WAIT is held
	// all the same, as a server binds it.
	twPort := timeWaitPort(t)
	held, err = holdPorts([]HostPort{{Protocol: "tcp", Port: twPort}})
	if err != nil {
		t.Errorf("hold a port in TIME_WAIT: %v", err)
	} else {
		checkPortsHeld(t, twPort, 0)
		held.release()
	}

	for _, bad := range []HostPort{{Protocol: "sctp", Port: 80}, {Protocol: "tcp"}, {Protocol: "tcp", IP: "web", Port: 80}} {
		if held, err := holdPorts([]HostPort{bad}); err == nil {
			held.release()
			t.Errorf("%+v held", bad)
		}
	}
}

// timeWaitPort is a TCP port whose last server has gone, leaving its side
// of a connection in TIME_WAIT: a bind without SO_REUSEADDR fails on it.
func timeWaitPort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// The server closes first: its end waits out TIME_WAIT.
	server.Close()
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after the server closed succeeded")
	}
	client.Close()
	l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port)}); !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("bind without SO_REUSEADDR of a port in TIME_WAIT: %v, want address already in use", err)
	}
	return port
}

// socketInodes are the socket inodes of process pid's descriptors.
func socketInodes(t *testing.T, pid int) map[string]bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(link, "socket:") {
			out[link] = true
		}
	}
	return out
}

// TestPublishedPortsHeld: the monitor holds the container's ports from its
// start, across restarts by its policy, and lets them go when it is
// stopped; the sockets never reach the container. A start with a port
// taken fails with the address named and leaves nothing running.
func TestPublishedPortsHeld(t *testing.T) {
	t.Parallel()
	r := testRuntime(t)
	tcpPort, udpPort := freeHostPort(t, "tcp"), freeHostPort(t, "udp")
	spec, _ := restartSpec(t, "ports", RestartPolicy{Name: RestartAlways},
		`echo run >> /data/runs; if [ $(wc -l < /data/runs) -ge 3 ]; then echo serving; exec sleep 300; fi; exit 1`)
	// UDP first: the failed start below has bound it when the TCP port fails.
	spec.HoldPorts = []HostPort{{Protocol: "udp", IP: "127.0.0.1", Port: udpPort}, {Protocol: "tcp", Port: tcpPort}}
	first := run(t, r, spec).State
	checkPortsHeld(t, tcpPort, udpPort)

	waitLog(t, r, spec.Name, "stdout serving")
	st := getState(t, r, spec.Name)
	if st.Status != Running || st.RestartCount != 2 || st.MonitorPid != first.MonitorPid {
		t.Fatalf("state %+v, want running after 2 restarts by the same monitor %d", st, first.MonitorPid)
	}
	checkPortsHeld(t, tcpPort, udpPort)
	// The container's process has none of the monitor's sockets.
	mon := socketInodes(t, st.MonitorPid)
	if len(mon) < 3 { // the control socket and the two ports
		t.Errorf("the monitor has %d sockets, want the control socket and 2 ports", len(mon))
	}
	for s := range socketInodes(t, st.Pid) {
		if mon[s] {
			t.Errorf("the container's process has the monitor's %s", s)
		}
	}

	if err := r.Stop(context.Background(), spec.Name, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	checkPortsFree(t, tcpPort, udpPort)

	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", tcpPort))
	if err != nil {
		t.Fatal(err)
	}
	err = r.Start(context.Background(), spec.Name)
	l.Close()
	if want := fmt.Sprintf("bind 0.0.0.0:%d/tcp: address already in use", tcpPort); err == nil || err.Error() != want {
		t.Fatalf("start with the port taken: %v, want %q", err, want)
	}
	st = getState(t, r, spec.Name)
	if st.Status != Exited || st.MonitorPid != 0 || st.Pid != 0 || !strings.Contains(st.Error, "address already in use") {
		t.Errorf("state after the failed start %+v", st)
	}
	checkNoCgroup(t, spec.Name)
	if _, err := os.Stat(filepath.Join(r.dir, spec.Name, monitorSock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left: %v", err)
	}
	checkPortsFree(t, tcpPort, udpPort)

	// Free again, the port is held again by the next start.
	if err := r.Start(context.Background(), spec.Name); err != nil {
		t.Fatal(err)
	}
	checkPortsHeld(t, tcpPort, udpPort)
}

// TestPublishedPortsFreedAtExit: a container that exits by itself, for
// good, has let its ports go by the time its state says exited.
func TestPublishedPortsFreedAtExit(t *testing.T) {
	t.Parallel()
	r := testRuntime(t)
	tcpPort, udpPort := freeHostPort(t, "tcp"), freeHostPort(t, "udp")
	spec, data := restartSpec(t, "portexit", RestartPolicy{}, "until [ -e /data/go ]; do sleep 0.02; done")
	spec.HoldPorts = []HostPort{{Protocol: "tcp", IP: "127.0.0.1", Port: tcpPort}, {Protocol: "udp", Port: udpPort}}
	run(t, r, spec)
	checkPortsHeld(t, tcpPort, udpPort)
	if err := os.WriteFile(filepath.Join(data, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r, spec.Name, Exited)
	checkPortsFree(t, tcpPort, udpPort)
}
