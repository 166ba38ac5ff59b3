package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitHostNetwork: network_mode host keeps the host's namespace, its
// interfaces and its resolvers.
func TestInitHostNetwork(t *testing.T) {
	s := spec(t, "sh", "-c", "ls /sys/class/net; cat /etc/resolv.conf")
	s.HostNetwork = true
	out := testRunOK(t, s)
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifaces {
		if !strings.Contains(out, ifc.Name+"\n") {
			t.Errorf("host interface %s not seen in a host-network container:\n%s", ifc.Name, out)
		}
	}
}

// TestInitJoinsNetNS: a container with NetNS joins that namespace (one the
// network package made, or another container's) instead of a new one.
func TestInitJoinsNetNS(t *testing.T) {
	s := spec(t, "sh", "-c", "ls /sys/class/net")
	var b [4]byte
	rand.Read(b[:])
	ns := "bt-rt" + hex.EncodeToString(b[:])
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "add", "bt-rtdummy", "type", "veth", "peer", "name", "bt-rtpeer")
	s.NetNS = "/run/netns/" + ns
	out := testRunOK(t, s)
	if !strings.Contains(out, "bt-rtdummy\n") {
		t.Errorf("the joined namespace's interface is missing:\n%s", out)
	}
}

// TestInitDNSConfig: Spec.DNS makes the resolv.conf (the monitor's 127.0.0.11).
func TestInitDNSConfig(t *testing.T) {
	s := spec(t, "cat", "/etc/resolv.conf")
	s.DNS = []string{"127.0.0.11"}
	s.DNSSearch = []string{"example.test"}
	s.DNSOptions = []string{"ndots:0"}
	want := "nameserver 127.0.0.11\nsearch example.test\noptions ndots:0\n"
	if out := testRunOK(t, s); out != want {
		t.Errorf("resolv.conf:\n%s\nwant:\n%s", out, want)
	}
}

// testStartDNS is the test binary's resolver role: it records the namespace
// it was asked to serve in config's marker file, and "closed" on Close.
func testStartDNS(netns string, config json.RawMessage) (io.Closer, error) {
	var cfg struct{ Marker string }
	if err := json.Unmarshal(config, &cfg); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfg.Marker, []byte(netns), 0o644); err != nil {
		return nil, err
	}
	return closerFunc(func() error { return os.WriteFile(cfg.Marker, []byte("closed"), 0o644) }), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// TestMonitorStartsDNS: a spec with DNSServer has the monitor start the
// resolver role in the container's namespace before the process, and stop
// it when the process exits.
func TestMonitorStartsDNS(t *testing.T) {
	r := testRuntime(t)
	var b [4]byte
	rand.Read(b[:])
	ns := "bt-rd" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	marker := filepath.Join(t.TempDir(), "dns")
	s := shSpec(t, "dns", "echo started; sleep 30")
	s.NetNS = "/run/netns/" + ns
	s.DNSServer = json.RawMessage(`{"marker":"` + marker + `"}`)
	run(t, r, s)
	if got, _ := os.ReadFile(marker); string(got) != s.NetNS {
		t.Fatalf("the resolver role got %q, want the namespace %q", got, s.NetNS)
	}
	if err := r.Stop(context.Background(), s.Name, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(marker); string(got) != "closed" {
		t.Errorf("after the exit the resolver is %q, want closed", got)
	}
}

// testSetupNetwork is the test binary's network role: it gives the new
// namespace a veth pair named in config, as the network package would plug
// in a real one.
func testSetupNetwork(pid int, config json.RawMessage) error {
	var cfg struct{ Name string }
	if err := json.Unmarshal(config, &cfg); err != nil {
		return err
	}
	ns := fmt.Sprintf("/proc/%d/ns/net", pid)
	out, err := exec.Command("nsenter", "--net="+ns, "ip", "link", "add", cfg.Name, "type", "veth", "peer", "name", cfg.Name+"p").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// TestMonitorSetsUpNetworkAndShares: the network role plugs the container's
// new namespace before its process starts, and a second container joins
// that namespace by the first one's name.
func TestMonitorSetsUpNetworkAndShares(t *testing.T) {
	r := testRuntime(t)
	owner := shSpec(t, "netowner", "ls /sys/class/net; readlink /proc/self/ns/net; sleep 30")
	owner.Network = json.RawMessage(`{"name":"bt-rtnet"}`)
	run(t, r, owner)
	joiner := shSpec(t, "netjoiner", "ls /sys/class/net; readlink /proc/self/ns/net")
	joiner.NetworkFrom = owner.Name
	run(t, r, joiner)
	waitFor(t, "the joiner to exit", func() bool {
		c, err := r.Get(joiner.Name)
		return err == nil && c.State.Status == Exited
	})
	logs := func(name string) string {
		var b strings.Builder
		r.ReadLogs(context.Background(), name, LogOptions{Tail: -1}, func(e LogEntry) error {
			b.Write(e.Text)
			b.WriteByte('\n')
			return nil
		})
		return b.String()
	}
	waitFor(t, "the owner's output", func() bool { return strings.Contains(logs(owner.Name), "net:") })
	o, j := logs(owner.Name), logs(joiner.Name)
	if !strings.Contains(o, "bt-rtnet\n") {
		t.Errorf("the network role's interface is missing in the owner:\n%s", o)
	}
	if o != j {
		t.Errorf("the joiner sees another namespace:\nowner:\n%s\njoiner:\n%s", o, j)
	}
}
