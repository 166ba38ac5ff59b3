package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// dnsTestNS makes a network namespace bt-d<pid><suffix> at /run/netns with
// lo up, removed when the test ends, and returns its name.
func dnsTestNS(t *testing.T, suffix string) string {
	t.Helper()
	name := fmt.Sprintf("bt-d%d%s", os.Getpid(), suffix)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s link set lo up: %v: %s", name, err, out)
	}
	return name
}

// dnsTestThreadNamespaces returns the network namespaces of all the
// threads of this process.
func dnsTestThreadNamespaces(t *testing.T) map[string][]string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, p := range tasks {
		ns, err := os.Readlink(p)
		if err != nil {
			continue // the thread ended
		}
		out[ns] = append(out[ns], p)
	}
	return out
}

// dnsTestDialInNS dials a TCP address from inside the namespace at nsPath,
// as a process of the container would.
func dnsTestDialInNS(t *testing.T, nsPath, addr string) net.Conn {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Unlocked only once back home. A thread left locked dies with its
		// goroutine, except the main thread, which the runtime parks for
		// good: still in the namespace, failing the thread checks.
		runtime.LockOSThread()
		var r result
		defer func() { done <- r }()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			r.err = err
			return
		}
		defer home.Close()
		f, err := os.Open(nsPath)
		if err != nil {
			r.err = err
			return
		}
		defer f.Close()
		if r.err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); r.err != nil {
			return
		}
		r.c, r.err = net.DialTimeout("tcp4", addr, 5*time.Second)
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			r.err = errors.Join(r.err, err)
			return
		}
		runtime.UnlockOSThread()
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("dial %s in %s: %v", addr, nsPath, r.err)
	}
	return r.c
}

func TestListenInNamespace(t *testing.T) {
	imagetest.NeedRoot(t)
	imagetest.NeedBusybox(t)
	name := dnsTestNS(t, "l")
	nsPath := filepath.Join("/run/netns", name)
	host := dnsTestThreadNamespaces(t)
	if len(host) != 1 {
		t.Fatalf("threads in several namespaces before the test: %v", host)
	}

	addr := netip.AddrPortFrom(netip.MustParseAddr(DNSResolverIP), DNSPort)
	pc, ln, err := ListenInNamespace(nsPath, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
	})
	if after := dnsTestThreadNamespaces(t); len(after) != 1 {
		t.Fatalf("a thread was left in another namespace: before %v, after %v", host, after)
	}

	// The upstream lives in the host's namespace, on its loopback: only a
	// forwarder outside the container's namespace reaches it.
	up := dnsTestStartUpstream(t, dnsTestUpstreamAnswer)
	recs := dnsTestRecords{
		names: map[string][]netip.Addr{"web": {netip.MustParseAddr("10.213.48.2"), netip.MustParseAddr("10.213.48.3")}},
		rev:   map[netip.Addr][]string{netip.MustParseAddr("10.213.48.2"): {"proj-web-1"}},
	}
	s := &Server{Records: recs, Upstreams: []netip.AddrPort{up.addr}}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { errs <- s.ServeUDP(ctx, pc) }()
	go func() { errs <- s.ServeTCP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	})

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"web", []string{"10.213.48.2", "10.213.48.3"}},
		{"WEB", []string{"10.213.48.2", "10.213.48.3"}},
		{"example.test", []string{"10.213.63.7"}}, // forwarded
		{"10.213.48.2", []string{"proj-web-1"}},   // PTR
	} {
		cmd := exec.Command("ip", "netns", "exec", name, imagetest.BusyboxPath, "nslookup", tc.query, DNSResolverIP)
		out, err := cmd.CombinedOutput()
		// busybox exits 1 when one of its A and AAAA queries has no answer
		// (the AAAA of web): judge by what it printed.
		if len(out) == 0 && err != nil {
			t.Fatalf("nslookup %s: %v", tc.query, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("nslookup %s in the namespace: no %s in:\n%s", tc.query, w, out)
			}
		}
	}
	if ids := up.seen(); len(ids) == 0 {
		t.Error("the upstream in the host's namespace saw no query")
	}

	// TCP from inside the namespace.
	c := dnsTestDialInNS(t, nsPath, addr.String())
	defer c.Close()
	m := dnsTestAskTCP(t, c, dnsTestQuery(t, 0x2a, "web", dnsmessage.TypeA, 0))
	if m.ID != 0x2a || len(dnsTestA(m)) != 2 {
		t.Fatalf("tcp in the namespace: %+v %v", m.Header, m.Answers)
	}

	// Not in the host's namespace: there, 127.0.0.11:53 is free to bind.
	if hostPC, err := net.ListenPacket("udp4", addr.String()); err != nil {
		t.Errorf("127.0.0.11:53 is taken in the host's namespace (%v): was the socket made there?", err)
	} else {
		hostPC.Close()
	}
}

func TestListenInNamespaceErrors(t *testing.T) {
	imagetest.NeedRoot(t)
	addr := netip.AddrPortFrom(netip.MustParseAddr(DNSResolverIP), DNSPort)
	missing := "/run/netns/bt-d-missing"
	_, _, err := ListenInNamespace(missing, addr)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing namespace: %v, want ErrNotExist naming %s", err, missing)
	}
	// A file that is not a namespace: setns fails, the thread stays home.
	notNS := filepath.Join(t.TempDir(), "not-a-netns")
	if err := os.WriteFile(notNS, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ListenInNamespace(notNS, addr); !errors.Is(err, unix.EINVAL) {
		t.Errorf("not a namespace: %v, want EINVAL", err)
	}
	// The address taken in the namespace: the second listen fails.
	nsPath := filepath.Join("/run/netns", dnsTestNS(t, "e"))
	pc, ln, err := ListenInNamespace(nsPath, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	defer ln.Close()
	if _, _, err := ListenInNamespace(nsPath, addr); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("second listen: %v, want EADDRINUSE", err)
	}
	if ns := dnsTestThreadNamespaces(t); len(ns) != 1 {
		t.Errorf("threads left in several namespaces: %v", ns)
	}
}
