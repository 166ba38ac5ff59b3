package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// The fixtures below build, with iproute2, what berth's bridge and veth
// code will build: a bridge with its gateway address per network, and per
// container a namespace joined to the bridge by a veth pair. Servers and
// clients are Go sockets opened inside those namespaces (natTestInNS), so
// that every answer names who answered and whom it saw as the peer, which
// is how the tests see a masquerade.
//
// Names: bridges bt-nb*, veths bt-nv*, host-address interfaces bt-nd*, namespaces bt-nc*;
// the tables' BridgePrefix is "bt-nb", so that the isolation rules of one
// test never touch the veth of the "outside" namespace. Addresses come from
// 10.213.32.0/20 only; published host ports from 21000-21999, below the
// ephemeral range, so that no other test's local server is shadowed.

const (
	natTestBridgePrefix = "bt-nb"
	natTestTablePrefix  = "bt_n_"
	natTestHostAddr     = "10.213.40.1" // the "host's own address", on bt-nd*
)

// natTestName returns a fresh name "bt-n"+kind+6 hex digits (11 bytes).
func natTestName(tb testing.TB, kind string) string {
	tb.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return "bt-n" + kind + hex.EncodeToString(b)
}

// natTestIP runs iproute2's ip and fails the test on error.
func natTestIP(tb testing.TB, args ...string) {
	tb.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// natTestIPCleanup runs ip at cleanup, reporting but not failing on error
// (the object may be gone with its namespace already).
func natTestIPCleanup(tb testing.TB, args ...string) {
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			tb.Logf("cleanup: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	})
}

// natTestSysctl writes a sysctl under /proc/sys/net.
func natTestSysctl(tb testing.TB, path, value string) {
	tb.Helper()
	if err := os.WriteFile("/proc/sys/net/"+path, []byte(value), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// natTestSetup skips without root and makes the host route: berth's bridge
// setup sets ip_forward=1 as well, so it is not restored.
func natTestSetup(tb testing.TB) {
	tb.Helper()
	imagetest.NeedRoot(tb)
	natTestSysctl(tb, "ipv4/ip_forward", "1")
}

// natTestNet is a bridge with its gateway address.
type natTestNet struct {
	bridge string
	subnet netip.Prefix
	gw     netip.Addr
}

func (n natTestNet) rule(internal bool) BridgeRule {
	return BridgeRule{Bridge: n.bridge, Subnet: n.subnet, Internal: internal}
}

// natTestAddr is the address host of the subnet, e.g. .2.
func (n natTestNet) addr(host byte) netip.Addr {
	a := n.subnet.Addr().As4()
	a[3] = host
	return netip.AddrFrom4(a)
}

// natTestBridge makes a bridge for subnet (a /24) with gateway .1, and
// route_localnet=1 on it as Apply's caller must.
func natTestBridge(tb testing.TB, subnet string) natTestNet {
	tb.Helper()
	n := natTestNet{bridge: natTestName(tb, "b"), subnet: netip.MustParsePrefix(subnet)}
	n.gw = n.addr(1)
	natTestIP(tb, "link", "add", n.bridge, "type", "bridge")
	natTestIPCleanup(tb, "link", "del", n.bridge)
	natTestIP(tb, "addr", "add", fmt.Sprintf("%s/%d", n.gw, n.subnet.Bits()), "dev", n.bridge)
	natTestIP(tb, "link", "set", n.bridge, "up")
	natTestSysctl(tb, "ipv4/conf/"+n.bridge+"/route_localnet", "1")
	return n
}

// natTestBox is a namespace with one interface eth0.
type natTestBox struct {
	ns   string
	addr netip.Addr
}

// natTestNS makes a namespace with a veth pair: eth0 with addr/bits inside,
// the returned host end outside (down, unconfigured).
func natTestNS(tb testing.TB, addr netip.Addr, bits int) (natTestBox, string) {
	tb.Helper()
	box := natTestBox{ns: natTestName(tb, "c"), addr: addr}
	natTestIP(tb, "netns", "add", box.ns)
	natTestIPCleanup(tb, "netns", "del", box.ns)
	veth := natTestName(tb, "v")
	natTestIP(tb, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", box.ns)
	// Deleting the namespace frees the pair only when the kernel gets to
	// it: delete it first, and at once.
	natTestIPCleanup(tb, "link", "del", veth)
	natTestIP(tb, "-n", box.ns, "link", "set", "lo", "up")
	natTestIP(tb, "-n", box.ns, "addr", "add", fmt.Sprintf("%s/%d", addr, bits), "dev", "eth0")
	natTestIP(tb, "-n", box.ns, "link", "set", "eth0", "up")
	return box, veth
}

// natTestContainer attaches a namespace at address .host of n, routed
// through the gateway, its bridge port in hairpin mode (as berth's veth
// code must set it).
func natTestContainer(tb testing.TB, n natTestNet, host byte) natTestBox {
	tb.Helper()
	box, veth := natTestNS(tb, n.addr(host), n.subnet.Bits())
	natTestIP(tb, "link", "set", veth, "master", n.bridge)
	natTestIP(tb, "link", "set", "dev", veth, "type", "bridge_slave", "hairpin", "on")
	natTestIP(tb, "link", "set", veth, "up")
	natTestIP(tb, "-n", box.ns, "route", "add", "default", "via", n.gw.String())
	return box
}

// natTestOutside makes a namespace standing for another machine on a
// network the host routes to: 10.213.41.2, the host being 10.213.41.1, and
// (so that only NAT or the filter explains what fails) a route back to all
// of 10.213.32.0/20 through the host.
func natTestOutside(tb testing.TB) natTestBox {
	tb.Helper()
	box, veth := natTestNS(tb, netip.MustParseAddr("10.213.41.2"), 24)
	natTestIP(tb, "addr", "add", "10.213.41.1/24", "dev", veth)
	natTestIP(tb, "link", "set", veth, "up")
	natTestIP(tb, "-n", box.ns, "route", "add", "10.213.32.0/20", "via", "10.213.41.1")
	return box
}

// natTestHostAddress puts natTestHostAddr (and extra addresses) on an
// interface of the host, as its LAN address would be: a bridge without
// ports, as this kernel may lack the dummy type.
func natTestHostAddress(tb testing.TB, extra ...string) {
	tb.Helper()
	iface := natTestName(tb, "d")
	natTestIP(tb, "link", "add", iface, "type", "bridge")
	natTestIPCleanup(tb, "link", "del", iface)
	for _, a := range append([]string{natTestHostAddr}, extra...) {
		natTestIP(tb, "addr", "add", a+"/32", "dev", iface)
	}
	natTestIP(tb, "link", "set", iface, "up")
}

// natTestTable returns a fresh table name, removed at cleanup.
func natTestTable(tb testing.TB) string {
	tb.Helper()
	name := natTestTablePrefix + strings.TrimPrefix(natTestName(tb, ""), "bt-n")
	tb.Cleanup(func() {
		if err := Remove(name); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	})
	return name
}

// natTestInNS runs fn on a thread in the namespace ns ("" for the host's).
// Sockets opened by fn stay in ns. The thread is never unlocked, so that it
// ends with the goroutine rather than serve others in the wrong namespace.
func natTestInNS(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", ns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// natTestServe answers, on each TCP and UDP port in the box, with
// "NAME:PORT PEER" where PEER is the address it sees the client at.
func natTestServe(tb testing.TB, box natTestBox, name string, ports ...uint16) {
	tb.Helper()
	var wg sync.WaitGroup
	var closers []io.Closer
	tb.Cleanup(func() {
		for _, c := range closers {
			c.Close()
		}
		wg.Wait()
	})
	for _, port := range ports {
		var ln net.Listener
		var pc net.PacketConn
		err := natTestInNS(box.ns, func() (err error) {
			if ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port)); err != nil {
				return err
			}
			closers = append(closers, ln)
			if pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port)); err != nil {
				return err
			}
			closers = append(closers, pc)
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		answer := func(peer net.Addr) []byte {
			ap, _ := netip.ParseAddrPort(peer.String())
			return fmt.Appendf(nil, "%s:%d %s", name, port, ap.Addr())
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write(answer(c.RemoteAddr()))
				c.Close()
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			for {
				_, peer, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(answer(peer), peer)
			}
		}()
	}
}

// natTestCheck is one connection attempt and what it must yield.
type natTestCheck struct {
	from  string // namespace; "" for the host
	proto string // "tcp" or "udp"
	to    string // "addr:port"
	want  string // the answer; "" when no answer may come
}

// natTestRun makes the attempts in parallel (the blocked ones take their
// whole timeout) and reports every one that went otherwise.
func natTestRun(t *testing.T, checks ...natTestCheck) {
	t.Helper()
	got := make([]string, len(checks))
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			timeout := 5 * time.Second
			if c.want == "" {
				// Long enough for an answer over veths; a drop costs all of it.
				timeout = time.Second
			}
			got[i], errs[i] = natTestAsk(c.from, c.proto, c.to, timeout)
		})
	}
	wg.Wait()
	for i, c := range checks {
		from := c.from
		if from == "" {
			from = "host"
		}
		switch {
		case c.want != "" && errs[i] != nil:
			t.Errorf("%s -> %s/%s: %v, want answer %q", from, c.to, c.proto, errs[i], c.want)
		case c.want != "" && got[i] != c.want:
			t.Errorf("%s -> %s/%s: answer %q, want %q", from, c.to, c.proto, got[i], c.want)
		case c.want == "" && errs[i] == nil:
			t.Errorf("%s -> %s/%s: answer %q, want none", from, c.to, c.proto, got[i])
		}
	}
}

// natTestAsk connects from namespace ns and returns the server's answer.
func natTestAsk(ns, proto, to string, timeout time.Duration) (string, error) {
	var c net.Conn
	err := natTestInNS(ns, func() (err error) {
		c, err = net.DialTimeout(proto+"4", to, timeout)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if proto == "udp" {
		if _, err := c.Write([]byte("?")); err != nil {
			return "", err
		}
		buf := make([]byte, 128)
		n, err := c.Read(buf)
		return string(buf[:n]), err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// natTestRules lists the table's rules per chain.
func natTestRules(t *testing.T, table string) map[string]int {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tbl := &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, ch := range chains {
		if ch.Table.Name != table {
			continue
		}
		rules, err := c.GetRules(tbl, ch)
		if err != nil {
			t.Fatal(err)
		}
		counts[ch.Name] = len(rules)
	}
	return counts
}

func natTestMapping(proto string, hostPort uint16, to natTestBox, port uint16, n natTestNet) PortMapping {
	return PortMapping{Protocol: proto, HostPort: hostPort, ContainerAddr: to.addr, ContainerPort: port, Bridge: n.bridge}
}

// TestApplyPublishesPorts: a TCP and a UDP port on every address answer on
// 127.0.0.1 (the source masqueraded to the gateway, else the reply would
// stay in the container) and on another address of the host (the source
// kept).
func TestApplyPublishesPorts(t *testing.T) {
	natTestSetup(t)
	n := natTestBridge(t, "10.213.33.0/24")
	web := natTestContainer(t, n, 2)
	natTestServe(t, web, "web", 80)
	natTestHostAddress(t)
	err := Apply(ProjectRules{
		Table:        natTestTable(t),
		BridgePrefix: natTestBridgePrefix,
		Networks:     []BridgeRule{n.rule(false)},
		Ports: []PortMapping{
			natTestMapping("tcp", 21080, web, 80, n),
			natTestMapping("udp", 21053, web, 80, n),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	natTestRun(t,
		natTestCheck{proto: "tcp", to: "127.0.0.1:21080", want: "web:80 10.213.33.1"},
		natTestCheck{proto: "tcp", to: natTestHostAddr + ":21080", want: "web:80 " + natTestHostAddr},
		natTestCheck{proto: "udp", to: "127.0.0.1:21053", want: "web:80 10.213.33.1"},
		natTestCheck{proto: "udp", to: natTestHostAddr + ":21053", want: "web:80 " + natTestHostAddr},
		// The other protocol is not published.
		natTestCheck{proto: "udp", to: "127.0.0.1:21080"},
		natTestCheck{proto: "tcp", to: "127.0.0.1:21053"},
	)
}

// TestApplyHostIPRestricts: a mapping on one host address answers there
// only.
func TestApplyHostIPRestricts(t *testing.T) {
	natTestSetup(t)
	n := natTestBridge(t, "10.213.33.0/24")
	web := natTestContainer(t, n, 2)
	natTestServe(t, web, "web", 80)
	natTestHostAddress(t, "10.213.40.2")
	onHost := natTestMapping("tcp", 21081, web, 80, n)
	onHost.HostIP = netip.MustParseAddr(natTestHostAddr)
	onLoopback := natTestMapping("udp", 21082, web, 80, n)
	onLoopback.HostIP = netip.MustParseAddr("127.0.0.1")
	err := Apply(ProjectRules{
		Table:        natTestTable(t),
		BridgePrefix: natTestBridgePrefix,
		Networks:     []BridgeRule{n.rule(false)},
		Ports:        []PortMapping{onHost, onLoopback},
	})
	if err != nil {
		t.Fatal(err)
	}
	natTestRun(t,
		natTestCheck{proto: "tcp", to: natTestHostAddr + ":21081", want: "web:80 " + natTestHostAddr},
		natTestCheck{proto: "tcp", to: "127.0.0.1:21081"},
		natTestCheck{proto: "tcp", to: "10.213.40.2:21081"},
		natTestCheck{proto: "tcp", to: n.gw.String() + ":21081"},
		// From a container, through prerouting.
		natTestCheck{from: web.ns, proto: "tcp", to: natTestHostAddr + ":21081", want: "web:80 10.213.33.1"},
		natTestCheck{from: web.ns, proto: "tcp", to: n.gw.String() + ":21081"},
		natTestCheck{proto: "udp", to: "127.0.0.1:21082", want: "web:80 10.213.33.1"},
		natTestCheck{proto: "udp", to: natTestHostAddr + ":21082"},
		// From a container, 127.0.0.1 is its own.
		natTestCheck{from: web.ns, proto: "udp", to: n.gw.String() + ":21082"},
	)
}

// TestApplyPortRange: a published range becomes one rule per port, each
// reaching its own container port.
func TestApplyPortRange(t *testing.T) {
	natTestSetup(t)
	n := natTestBridge(t, "10.213.33.0/24")
	web := natTestContainer(t, n, 2)
	natTestServe(t, web, "web", 8000, 8001, 8002)
	ports, err := PortRange{Protocol: "tcp", HostFirst: 21090, HostLast: 21092, ContainerFirst: 8000, ContainerLast: 8002}.
		Expand(web.addr, n.bridge)
	if err != nil {
		t.Fatal(err)
	}
	table := natTestTable(t)
	err = Apply(ProjectRules{Table: table, BridgePrefix: natTestBridgePrefix, Networks: []BridgeRule{n.rule(false)}, Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	if got := natTestRules(t, table)["output"]; got != 3 {
		t.Errorf("output chain has %d rules, want 3 (one per port)", got)
	}
	natTestRun(t,
		natTestCheck{proto: "tcp", to: "127.0.0.1:21090", want: "web:8000 10.213.33.1"},
		natTestCheck{proto: "tcp", to: "127.0.0.1:21091", want: "web:8001 10.213.33.1"},
		natTestCheck{proto: "tcp", to: "127.0.0.1:21092", want: "web:8002 10.213.33.1"},
	)
}

// TestApplyOutboundAndInternal: with a machine outside (a namespace the
// host routes to, with a route back to the containers), a container
// reaches it masqueraded; an internal network has no way out or in; from
// outside, containers answer on published ports only.
func TestApplyOutboundAndInternal(t *testing.T) {
	natTestSetup(t)
	front := natTestBridge(t, "10.213.33.0/24")
	back := natTestBridge(t, "10.213.34.0/24")
	app := natTestContainer(t, front, 2)
	db := natTestContainer(t, back, 2)
	out := natTestOutside(t)
	natTestServe(t, app, "app", 80)
	natTestServe(t, db, "db", 80)
	natTestServe(t, out, "out", 80, 21100)

	// Without the table everything is routed, unchanged: the checks below
	// fail because of the rules, not of the fixture.
	natTestRun(t,
		natTestCheck{from: app.ns, proto: "tcp", to: "10.213.41.2:80", want: "out:80 10.213.33.2"},
		natTestCheck{from: db.ns, proto: "tcp", to: "10.213.41.2:80", want: "out:80 10.213.34.2"},
		natTestCheck{from: out.ns, proto: "tcp", to: "10.213.33.2:80", want: "app:80 10.213.41.2"},
		natTestCheck{from: out.ns, proto: "tcp", to: "10.213.34.2:80", want: "db:80 10.213.41.2"},
	)
	// Each direction of the internal network alone, as a one-way UDP leak
	// would use it.
	toOut := natTestDatagrams(t, out, 5353)
	toDB := natTestDatagrams(t, db, 5353)
	if !toOut(db.ns) || !toDB(out.ns) {
		t.Error("datagrams between db and outside lost without the table")
	}
	if t.Failed() {
		t.FailNow()
	}

	err := Apply(ProjectRules{
		Table:        natTestTable(t),
		BridgePrefix: natTestBridgePrefix,
		Networks:     []BridgeRule{front.rule(false), back.rule(true)},
		Ports: []PortMapping{
			natTestMapping("tcp", 21100, app, 80, front),
			natTestMapping("tcp", 21101, db, 80, back),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	natTestRun(t,
		natTestCheck{from: app.ns, proto: "tcp", to: "10.213.41.2:80", want: "out:80 10.213.41.1"},
		natTestCheck{from: app.ns, proto: "udp", to: "10.213.41.2:80", want: "out:80 10.213.41.1"},
		natTestCheck{from: db.ns, proto: "tcp", to: "10.213.41.2:80"},
		natTestCheck{from: db.ns, proto: "udp", to: "10.213.41.2:80"},
		// Not through a published port of the other network either.
		natTestCheck{from: db.ns, proto: "tcp", to: "10.213.34.1:21100"},
		natTestCheck{from: out.ns, proto: "tcp", to: "10.213.34.2:80"},
		natTestCheck{from: out.ns, proto: "tcp", to: "10.213.41.1:21101"},
		// From outside: published ports yes (through prerouting), direct
		// routing to a container no.
		natTestCheck{from: out.ns, proto: "tcp", to: "10.213.41.1:21100", want: "app:80 10.213.41.2"},
		natTestCheck{from: out.ns, proto: "tcp", to: "10.213.33.2:80"},
		natTestCheck{from: out.ns, proto: "udp", to: "10.213.33.2:80"},
		// The internal network's own bridge still works: the host reaches db.
		natTestCheck{proto: "tcp", to: "10.213.34.2:80", want: "db:80 10.213.34.1"},
		// A published port number on another machine is that machine's,
		// for containers and for the host.
		natTestCheck{from: app.ns, proto: "tcp", to: "10.213.41.2:21100", want: "out:21100 10.213.41.1"},
		natTestCheck{proto: "tcp", to: "10.213.41.2:21100", want: "out:21100 10.213.41.1"},
	)
	if toOut(db.ns) {
		t.Error("a datagram from the internal network reached outside")
	}
	if toDB(out.ns) {
		t.Error("a datagram from outside reached the internal network")
	}
}

// natTestDatagrams listens for UDP on port in box and returns a probe that
// sends one datagram from namespace ns and reports whether it arrived: one
// direction seen alone, whatever becomes of replies.
func natTestDatagrams(t *testing.T, box natTestBox, port uint16) func(ns string) bool {
	t.Helper()
	var pc net.PacketConn
	err := natTestInNS(box.ns, func() (err error) {
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	sent := 0
	return func(ns string) bool {
		t.Helper()
		sent++
		payload := fmt.Sprintf("probe %d", sent)
		var c net.Conn
		err := natTestInNS(ns, func() (err error) {
			c, err = net.Dial("udp4", netip.AddrPortFrom(box.addr, port).String())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(payload)); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 32)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return false
			}
			if string(buf[:n]) == payload {
				return true
			}
		}
	}
}

// TestApplyIsolation: two networks of a project and a network of another
// project reach each other neither directly nor, with one table only, in
// either direction; published ports stay reachable from all of them.
func TestApplyIsolation(t *testing.T) {
	natTestSetup(t)
	a1 := natTestBridge(t, "10.213.35.0/24")
	a2 := natTestBridge(t, "10.213.36.0/24")
	b1 := natTestBridge(t, "10.213.37.0/24")
	x := natTestContainer(t, a1, 2)
	y := natTestContainer(t, a2, 2)
	z := natTestContainer(t, b1, 2)
	natTestServe(t, x, "x", 80)
	natTestServe(t, y, "y", 80)
	natTestServe(t, z, "z", 80)

	natTestRun(t,
		natTestCheck{from: x.ns, proto: "tcp", to: "10.213.37.2:80", want: "z:80 10.213.35.2"},
		natTestCheck{from: z.ns, proto: "tcp", to: "10.213.35.2:80", want: "x:80 10.213.37.2"},
		natTestCheck{from: x.ns, proto: "tcp", to: "10.213.36.2:80", want: "y:80 10.213.35.2"},
	)
	if t.Failed() {
		t.FailNow()
	}

	projectA := ProjectRules{
		Table:        natTestTable(t),
		BridgePrefix: natTestBridgePrefix,
		Networks:     []BridgeRule{a1.rule(false), a2.rule(false)},
		Ports:        []PortMapping{natTestMapping("tcp", 21110, x, 80, a1)},
	}
	if err := Apply(projectA); err != nil {
		t.Fatal(err)
	}
	// Project B's table is not there: A's alone blocks both directions.
	natTestRun(t,
		natTestCheck{from: x.ns, proto: "tcp", to: "10.213.37.2:80"},
		natTestCheck{from: x.ns, proto: "udp", to: "10.213.37.2:80"},
		natTestCheck{from: z.ns, proto: "tcp", to: "10.213.35.2:80"},
		natTestCheck{from: x.ns, proto: "tcp", to: "10.213.36.2:80"},
		natTestCheck{from: y.ns, proto: "tcp", to: "10.213.35.2:80"},
	)

	projectB := ProjectRules{
		Table:        natTestTable(t),
		BridgePrefix: natTestBridgePrefix,
		Networks:     []BridgeRule{b1.rule(false)},
	}
	if err := Apply(projectB); err != nil {
		t.Fatal(err)
	}
	natTestRun(t,
		natTestCheck{from: x.ns, proto: "tcp", to: "10.213.37.2:80"},
		natTestCheck{from: z.ns, proto: "tcp", to: "10.213.35.2:80"},
		natTestCheck{from: z.ns, proto: "udp", to: "10.213.35.2:80"},
		// A published port is for whoever reaches the host.
		natTestCheck{from: z.ns, proto: "tcp", to: "10.213.37.1:21110", want: "x:80 10.213.35.1"},
		natTestCheck{from: y.ns, proto: "tcp", to: "10.213.36.1:21110", want: "x:80 10.213.35.1"},
	)
}

// TestApplyHairpin: a container reaches a sibling's published port, and
// its own, through the host's addresses.
func TestApplyHairpin(t *testing.T) {
	natTestSetup(t)
	n := natTestBridge(t, "10.213.38.0/24")
	web := natTestContainer(t, n, 2)
	sib := natTestContainer(t, n, 3)
	natTestServe(t, web, "web", 80)
	natTestServe(t, sib, "sib", 80)
	natTestHostAddress(t)
	err := Apply(ProjectRules{
		Table:        natTestTable(t),
		BridgePrefix: natTestBridgePrefix,
		Networks:     []BridgeRule{n.rule(false)},
		Ports: []PortMapping{
			natTestMapping("tcp", 21120, sib, 80, n),
			natTestMapping("tcp", 21121, web, 80, n),
			natTestMapping("udp", 21120, sib, 80, n),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	natTestRun(t,
		natTestCheck{from: web.ns, proto: "tcp", to: "10.213.38.1:21120", want: "sib:80 10.213.38.1"},
		natTestCheck{from: web.ns, proto: "tcp", to: natTestHostAddr + ":21120", want: "sib:80 10.213.38.1"},
		natTestCheck{from: web.ns, proto: "udp", to: natTestHostAddr + ":21120", want: "sib:80 10.213.38.1"},
		natTestCheck{from: web.ns, proto: "tcp", to: natTestHostAddr + ":21121", want: "web:80 10.213.38.1"},
		// Between siblings directly, nothing is translated.
		natTestCheck{from: web.ns, proto: "tcp", to: "10.213.38.3:80", want: "sib:80 10.213.38.2"},
	)
}

// TestApplyReplaces: Apply twice leaves one copy of each rule, and a new
// set of ports replaces the old one.
func TestApplyReplaces(t *testing.T) {
	natTestSetup(t)
	n := natTestBridge(t, "10.213.39.0/24")
	web := natTestContainer(t, n, 2)
	natTestServe(t, web, "web", 80, 81)
	table := natTestTable(t)
	first := ProjectRules{
		Table:        table,
		BridgePrefix: natTestBridgePrefix,
		Networks:     []BridgeRule{n.rule(false)},
		Ports: []PortMapping{
			natTestMapping("tcp", 21130, web, 80, n),
			natTestMapping("udp", 21130, web, 80, n),
		},
	}
	// Counted by hand from the rules at the top of nat_linux.go.
	want := map[string]int{"guard": 1, "prerouting": 2, "output": 2, "postrouting": 3, "forward": 3}
	for range 2 {
		if err := Apply(first); err != nil {
			t.Fatal(err)
		}
		if got := natTestRules(t, table); !maps.Equal(got, want) {
			t.Fatalf("rules per chain %v, want %v", got, want)
		}
	}
	second := first
	onLoopback := natTestMapping("tcp", 21131, web, 81, n)
	onLoopback.HostIP = netip.MustParseAddr("127.0.0.1")
	second.Ports = []PortMapping{onLoopback}
	if err := Apply(second); err != nil {
		t.Fatal(err)
	}
	want = map[string]int{"guard": 1, "prerouting": 0, "output": 1, "postrouting": 3, "forward": 3}
	if got := natTestRules(t, table); !maps.Equal(got, want) {
		t.Errorf("rules per chain %v, want %v", got, want)
	}
	natTestRun(t,
		natTestCheck{proto: "tcp", to: "127.0.0.1:21130"},
		natTestCheck{proto: "udp", to: "127.0.0.1:21130"},
		natTestCheck{proto: "tcp", to: "127.0.0.1:21131", want: "web:81 10.213.39.1"},
	)
}

// TestRemove: the table goes, its ports with it, and removing it again
// succeeds.
func TestRemove(t *testing.T) {
	natTestSetup(t)
	n := natTestBridge(t, "10.213.39.0/24")
	web := natTestContainer(t, n, 2)
	natTestServe(t, web, "web", 80)
	table := natTestTable(t)
	err := Apply(ProjectRules{
		Table:    table,
		Networks: []BridgeRule{n.rule(false)},
		Ports:    []PortMapping{natTestMapping("tcp", 21140, web, 80, n)},
	})
	if err != nil {
		t.Fatal(err)
	}
	natTestRun(t, natTestCheck{proto: "tcp", to: "127.0.0.1:21140", want: "web:80 10.213.39.1"})
	names, err := Tables(natTestTablePrefix)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, table) {
		t.Fatalf("Tables(%q) = %v, missing %s", natTestTablePrefix, names, table)
	}
	for range 2 {
		if err := Remove(table); err != nil {
			t.Fatal(err)
		}
	}
	if names, err = Tables(natTestTablePrefix); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, table) {
		t.Errorf("Tables(%q) = %v after Remove", natTestTablePrefix, names)
	}
	natTestRun(t, natTestCheck{proto: "tcp", to: "127.0.0.1:21140"})
}

// TestApplyRejects: invalid rules fail before any netlink message, naming
// the object (validate is what Apply runs first; no table is touched).
func TestApplyRejects(t *testing.T) {
	subnet := netip.MustParsePrefix("10.213.33.0/24")
	ok := BridgeRule{Bridge: "bt-nb0", Subnet: subnet}
	port := PortMapping{Protocol: "tcp", HostPort: 8080, ContainerAddr: netip.MustParseAddr("10.213.33.2"), ContainerPort: 80, Bridge: "bt-nb0"}
	for _, tc := range []struct {
		name string
		r    ProjectRules
		err  error
		msg  string
	}{
		{"no table", ProjectRules{}, ErrInvalidRules, `table ""`},
		{"long bridge", ProjectRules{Table: "t", Networks: []BridgeRule{{Bridge: "bt-n0123456789ab", Subnet: subnet}}}, ErrInvalidRules, "bt-n0123456789ab"},
		{"v6 subnet", ProjectRules{Table: "t", Networks: []BridgeRule{{Bridge: "b", Subnet: netip.MustParsePrefix("fd00::/64")}}}, ErrInvalidRules, "fd00::/64"},
		{"twice", ProjectRules{Table: "t", Networks: []BridgeRule{ok, ok}}, ErrInvalidRules, "twice"},
		{"unknown bridge", ProjectRules{Table: "t", Ports: []PortMapping{port}}, ErrBadPortMapping, `bridge "bt-nb0"`},
		{"outside subnet", ProjectRules{Table: "t", Networks: []BridgeRule{ok}, Ports: []PortMapping{func() PortMapping {
			p := port
			p.ContainerAddr = netip.MustParseAddr("10.213.34.2")
			return p
		}()}}, ErrBadPortMapping, "outside 10.213.33.0/24"},
		{"clash", ProjectRules{Table: "t", Networks: []BridgeRule{ok}, Ports: []PortMapping{port, port}}, ErrPublishedPortConflict, "8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.validate()
			if !errors.Is(err, tc.err) {
				t.Fatalf("validate: %v, want %v", err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("validate: %q does not name %q", err, tc.msg)
			}
		})
	}
}

// natTestLoopbackVia makes the namespace send packets for 127.0.0.1 out of
// eth0 to gw, and accept them back, as a hostile container or LAN machine
// can.
func natTestLoopbackVia(tb testing.TB, box natTestBox, gw string) {
	tb.Helper()
	natTestIP(tb, "-n", box.ns, "route", "add", "127.0.0.1/32", "via", gw, "dev", "eth0", "table", "100")
	// Ahead of the local table, which answers 127.0.0.1 at pref 0.
	natTestIP(tb, "-n", box.ns, "rule", "add", "to", "127.0.0.1/32", "lookup", "100", "pref", "10")
	natTestIP(tb, "-n", box.ns, "rule", "del", "pref", "0")
	natTestIP(tb, "-n", box.ns, "rule", "add", "lookup", "local", "pref", "20")
	err := natTestInNS(box.ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/eth0/route_localnet", []byte("1"), 0o644)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// TestApplyLoopbackGuards: route_localnet on the bridge must not open the
// host's 127.0.0.1 to its containers (CVE-2020-8558), and a port published
// on 127.0.0.1 must not be reachable by a machine that sends packets to
// 127.0.0.1 through the host (moby#45610). Both namespaces route
// 127.0.0.1 to the host; without the guards both connections succeed.
func TestApplyLoopbackGuards(t *testing.T) {
	natTestSetup(t)
	n := natTestBridge(t, "10.213.42.0/24")
	web := natTestContainer(t, n, 2)
	natTestServe(t, web, "web", 80)
	out := natTestOutside(t)
	natTestLoopbackVia(t, web, n.gw.String())
	natTestLoopbackVia(t, out, "10.213.41.1")

	// A service of the host on 127.0.0.1 only.
	ln, err := net.Listen("tcp4", "127.0.0.1:21150")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("host:21150"))
			c.Close()
		}
	})
	natTestRun(t,
		natTestCheck{from: web.ns, proto: "tcp", to: "127.0.0.1:21150", want: "host:21150"},
	)
	if t.Failed() {
		t.FailNow()
	}

	onLoopback := natTestMapping("tcp", 21151, web, 80, n)
	onLoopback.HostIP = netip.MustParseAddr("127.0.0.1")
	err = Apply(ProjectRules{
		Table:        natTestTable(t),
		BridgePrefix: natTestBridgePrefix,
		Networks:     []BridgeRule{n.rule(false)},
		Ports:        []PortMapping{onLoopback, natTestMapping("tcp", 21152, web, 80, n)},
	})
	if err != nil {
		t.Fatal(err)
	}
	natTestRun(t,
		natTestCheck{from: web.ns, proto: "tcp", to: "127.0.0.1:21150"},
		natTestCheck{from: out.ns, proto: "tcp", to: "127.0.0.1:21151"},
		natTestCheck{from: out.ns, proto: "tcp", to: "127.0.0.1:21152"},
		// The host's own way is open.
		natTestCheck{proto: "tcp", to: "127.0.0.1:21151", want: "web:80 10.213.42.1"},
		natTestCheck{proto: "tcp", to: "127.0.0.1:21152", want: "web:80 10.213.42.1"},
		natTestCheck{from: out.ns, proto: "tcp", to: "10.213.41.1:21152", want: "web:80 10.213.41.2"},
	)
}

// BenchmarkPublishedPort compares HTTP requests per second through a port
// published on 127.0.0.1 with the same requests sent straight to the
// container's address (the host routes both through the same bridge), and
// reports both and their ratio; the target is a ratio of 0.95 or more.
//
// Keep-alive is off, so every request is a new connection: that is where a
// published port costs anything. The first packet of a connection walks
// the output and postrouting nat chains and conntrack binds the DNAT and
// the masquerade; every later packet is translated by conntrack alone.
// With keep-alive the setup would be paid once and the ratio would hide it.
// Each iteration makes a bounded 2,000 requests per path, in alternating
// batches of 50, on loopback and test namespaces only.
func BenchmarkPublishedPort(b *testing.B) {
	natTestSetup(b)
	n := natTestBridge(b, "10.213.43.0/24")
	web := natTestContainer(b, n, 2)
	var ln net.Listener
	err := natTestInNS(web.ns, func() (err error) {
		ln, err = net.Listen("tcp4", ":80")
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from web\n")
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	b.Cleanup(func() { srv.Close(); <-served })
	published := natTestMapping("tcp", 21160, web, 80, n)
	published.HostIP = netip.MustParseAddr("127.0.0.1")
	err = Apply(ProjectRules{
		Table:        natTestTable(b),
		BridgePrefix: natTestBridgePrefix,
		Networks:     []BridgeRule{n.rule(false)},
		Ports:        []PortMapping{published},
	})
	if err != nil {
		b.Fatal(err)
	}

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	get := func(url string, count int) time.Duration {
		start := time.Now()
		for range count {
			resp, err := client.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("GET %s: %s, %v", url, resp.Status, err)
			}
		}
		return time.Since(start)
	}
	const (
		requests = 2000
		batch    = 50
	)
	directURL := "http://" + web.addr.String() + "/"
	publishedURL := "http://127.0.0.1:21160/"
	get(directURL, batch) // warm up: ARP, the first conntrack entries
	get(publishedURL, batch)

	// The ratio is the median over adjacent pairs of batches, each pair
	// run in alternating order: other work on the machine slows both paths
	// of a pair alike, and a burst of it moves the median little.
	var direct, through time.Duration
	var ratios []float64
	total := 0
	for b.Loop() {
		for i := range requests / batch {
			var d, p time.Duration
			if i%2 == 0 {
				d = get(directURL, batch)
				p = get(publishedURL, batch)
			} else {
				p = get(publishedURL, batch)
				d = get(directURL, batch)
			}
			direct += d
			through += p
			ratios = append(ratios, d.Seconds()/p.Seconds())
		}
		total += requests
	}
	slices.Sort(ratios)
	b.ReportMetric(float64(total)/direct.Seconds(), "direct-req/s")
	b.ReportMetric(float64(total)/through.Seconds(), "published-req/s")
	b.ReportMetric(ratios[len(ratios)/2], "published/direct")
}
