package network

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// The host FORWARD chain tests never touch the machine's own firewall:
// each one makes a network namespace that stands for the host (bt-nfh*),
// with its own iptables filter table, its own bridge and its own berth
// table, and the "containers" and the "outside" machine as namespaces
// plugged into it. Deleting the namespaces at cleanup takes all of it
// away. Addresses: 10.213.56.0/24 behind the bridge, 10.213.57.0/24
// between the host and the outside.

// fwdTestHost is the stand-in host with its bridge and its neighbours.
type fwdTestHost struct {
	ns      string // the host's namespace
	bridge  string
	web     natTestBox // 10.213.56.2, serving web:80
	db      natTestBox // 10.213.56.3, serving db:80
	outside natTestBox // 10.213.57.2, serving out:80
	table   string     // berth's project table in ns
}

const (
	fwdTestHostAddr = "10.213.57.1" // the host's address toward the outside
	fwdTestPort     = 21400         // published: host port → web:80
)

// fwdTestSetup builds the host namespace: forwarding on, br_netfilter's
// call into iptables on (as docker leaves it), a berth bridge with two
// containers, the outside, and berth's own table with a published port,
// as Apply makes it. No iptables filter table yet.
func fwdTestSetup(t *testing.T) fwdTestHost {
	t.Helper()
	imagetest.NeedRoot(t)
	h := fwdTestHost{ns: natTestName(t, "fh"), bridge: natTestName(t, "b"), table: "berth_fwdtest"}
	natTestIP(t, "netns", "add", h.ns)
	natTestIPCleanup(t, "netns", "del", h.ns)
	natTestIP(t, "-n", h.ns, "link", "set", "lo", "up")
	err := natTestInNS(h.ns, func() error {
		for path, v := range map[string]string{"ipv4/ip_forward": "1", "bridge/bridge-nf-call-iptables": "1"} {
			if err := os.WriteFile("/proc/sys/net/"+path, []byte(v), 0o644); err != nil {
				return err
			}
		}
		return EnsureBridge(h.bridge, netip.MustParsePrefix("10.213.56.1/24"), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	attach := func(addr, via, peer string) natTestBox {
		box := natTestBox{ns: natTestName(t, "c"), addr: netip.MustParseAddr(addr)}
		natTestIP(t, "netns", "add", box.ns)
		natTestIPCleanup(t, "netns", "del", box.ns)
		veth := natTestName(t, "v")
		natTestIP(t, "-n", h.ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", box.ns)
		if peer == "" {
			natTestIP(t, "-n", h.ns, "link", "set", veth, "master", h.bridge)
		} else {
			natTestIP(t, "-n", h.ns, "addr", "add", peer+"/24", "dev", veth)
		}
		natTestIP(t, "-n", h.ns, "link", "set", veth, "up")
		natTestIP(t, "-n", box.ns, "link", "set", "lo", "up")
		natTestIP(t, "-n", box.ns, "addr", "add", addr+"/24", "dev", "eth0")
		natTestIP(t, "-n", box.ns, "link", "set", "eth0", "up")
		natTestIP(t, "-n", box.ns, "route", "add", "default", "via", via)
		return box
	}
	h.web = attach("10.213.56.2", "10.213.56.1", "")
	h.db = attach("10.213.56.3", "10.213.56.1", "")
	h.outside = attach("10.213.57.2", fwdTestHostAddr, fwdTestHostAddr)
	natTestServe(t, h.web, "web", 80)
	natTestServe(t, h.db, "db", 80)
	natTestServe(t, h.outside, "out", 80)
	err = natTestInNS(h.ns, func() error {
		return Apply(ProjectRules{
			Table: h.table, BridgePrefix: natTestBridgePrefix,
			Networks: []BridgeRule{{Bridge: h.bridge, Subnet: netip.MustParsePrefix("10.213.56.0/24")}},
			Ports: []PortMapping{{Protocol: "tcp", HostPort: fwdTestPort, ContainerAddr: h.web.addr,
				ContainerPort: 80, Bridge: h.bridge}},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checks are the crossings of the host's FORWARD chain: a container out,
// the outside in through the published port, and one container to the
// other on the same bridge (bridged, but filtered with br_netfilter). With
// open false, every one must fail. The outside never reaches a container
// directly, FORWARD rules or not (berth's own table).
func (h fwdTestHost) checks(open bool) []natTestCheck {
	checks := []natTestCheck{
		{from: h.web.ns, proto: "tcp", to: "10.213.57.2:80", want: "out:80 " + fwdTestHostAddr},
		{from: h.outside.ns, proto: "tcp", to: fmt.Sprintf("%s:%d", fwdTestHostAddr, fwdTestPort), want: "web:80 10.213.57.2"},
		{from: h.db.ns, proto: "tcp", to: "10.213.56.2:80", want: "web:80 10.213.56.3"},
	}
	if !open {
		for i := range checks {
			checks[i].want = ""
		}
	}
	return append(checks, natTestCheck{from: h.outside.ns, proto: "tcp", to: "10.213.56.2:80"})
}

// in runs fn in the host's namespace and fails the test on error.
func (h fwdTestHost) in(t *testing.T, fn func() error) {
	t.Helper()
	if err := natTestInNS(h.ns, fn); err != nil {
		t.Fatal(err)
	}
}

// filterForward makes iptables-nft's table ip filter with its FORWARD
// chain (what `iptables -P FORWARD DROP` makes), and rules appended to it.
func (h fwdTestHost) filterForward(t *testing.T, policy nftables.ChainPolicy, rules ...[]expr.Any) {
	t.Helper()
	h.in(t, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		tbl := c.AddTable(&nftables.Table{Name: "filter", Family: nftables.TableFamilyIPv4})
		ch := c.AddChain(&nftables.Chain{Name: "FORWARD", Table: tbl, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policy})
		for _, r := range rules {
			c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: r})
		}
		return c.Flush()
	})
}

// forwardChain returns the FORWARD chain's policy and its rules' comments
// ("" for a rule without one).
func (h fwdTestHost) forwardChain(t *testing.T) (nftables.ChainPolicy, []string) {
	t.Helper()
	var policy nftables.ChainPolicy
	var comments []string
	h.in(t, func() error {
		rules, ch, err := forwardNftRules()
		if err != nil {
			return err
		}
		if ch == nil {
			return fmt.Errorf("no FORWARD chain")
		}
		policy = *ch.Policy
		for _, r := range rules {
			comments = append(comments, forwardNftComment(r))
		}
		return nil
	})
	return policy, comments
}

// needTool finds an iptables binary; under BERTH_REQUIRE_ROOT (CI) its
// absence fails the test, as .ci/run installs it.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("BERTH_REQUIRE_ROOT") != "" {
		t.Fatalf("%s is missing: apt-get install iptables", name)
	}
	t.Skipf("%s is missing: apt-get install iptables", name)
	return ""
}

// TestForwardPolicyDrop: with the host's FORWARD policy DROP (as docker
// sets it), a container cannot get out, the outside cannot reach a
// published port, and with br_netfilter two containers of one bridge
// cannot talk, until EnsureForward adds berth's rules; RemoveForward
// takes them away and leaves the chain as it was. Both are idempotent, and
// iptables-nft still reads the chain.
func TestForwardPolicyDrop(t *testing.T) {
	h := fwdTestSetup(t)
	natTestRun(t, h.checks(true)...) // no filter table: berth's own rules only

	h.filterForward(t, nftables.ChainPolicyDrop)
	natTestRun(t, h.checks(false)...)

	h.in(t, func() error { return EnsureForward(h.bridge) })
	natTestRun(t, h.checks(true)...)
	h.in(t, func() error { return EnsureForward(h.bridge) })
	policy, comments := h.forwardChain(t)
	want := []string{"berth: out of " + h.bridge, "berth: replies to " + h.bridge, "berth: published ports on " + h.bridge}
	if policy != nftables.ChainPolicyDrop || strings.Join(comments, "|") != strings.Join(want, "|") {
		t.Errorf("after EnsureForward twice: policy %d, rules %q; want drop, %q", policy, comments, want)
	}
	h.in(t, func() error {
		got, err := ForwardBridges(natTestBridgePrefix)
		if err == nil && (len(got) != 1 || got[0] != h.bridge) {
			err = fmt.Errorf("ForwardBridges = %v, want [%s]", got, h.bridge)
		}
		return err
	})

	iptables := needTool(t, "iptables-nft")
	out, err := exec.Command("ip", "netns", "exec", h.ns, iptables, "-S", "FORWARD").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-nft -S FORWARD: %v\n%s", err, out)
	}
	for _, line := range []string{
		"-P FORWARD DROP",
		fmt.Sprintf(`-A FORWARD -i %[1]s -m comment --comment "berth: out of %[1]s" -j ACCEPT`, h.bridge),
		fmt.Sprintf(`-A FORWARD -o %[1]s -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "berth: replies to %[1]s" -j ACCEPT`, h.bridge),
		fmt.Sprintf(`-A FORWARD -o %[1]s -m conntrack --ctstate DNAT -m comment --comment "berth: published ports on %[1]s" -j ACCEPT`, h.bridge),
	} {
		if !strings.Contains(string(out), line+"\n") {
			t.Errorf("iptables-nft -S FORWARD lacks %q:\n%s", line, out)
		}
	}

	h.in(t, func() error { return RemoveForward(h.bridge) })
	h.in(t, func() error { return RemoveForward(h.bridge) })
	if policy, comments := h.forwardChain(t); policy != nftables.ChainPolicyDrop || len(comments) != 0 {
		t.Errorf("after RemoveForward: policy %d, rules %q; want the chain as it was: drop, none", policy, comments)
	}
	natTestRun(t, h.checks(false)...)
}

// TestForwardLeavesOpenChain: a FORWARD chain that lets traffic through
// gets no rules; one whose last rule drops does, ahead of that rule, and
// the rules of others stay where they are.
func TestForwardLeavesOpenChain(t *testing.T) {
	h := fwdTestSetup(t)
	other := append(natIfname(expr.MetaKeyIIFNAME, expr.CmpOpEq, "bt-nother"), &expr.Verdict{Kind: expr.VerdictAccept})
	h.filterForward(t, nftables.ChainPolicyAccept, other)
	h.in(t, func() error { return EnsureForward(h.bridge) })
	if _, comments := h.forwardChain(t); len(comments) != 1 {
		t.Fatalf("an open chain got rules: %q", comments)
	}

	h.filterForward(t, nftables.ChainPolicyAccept, []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}})
	natTestRun(t, h.checks(false)...)
	h.in(t, func() error { return EnsureForward(h.bridge) })
	_, comments := h.forwardChain(t)
	if len(comments) != 5 || comments[3] != "" || comments[4] != "" {
		t.Fatalf("chain ending in a drop: rules %q, want berth's three ahead of the two others", comments)
	}
	natTestRun(t, h.checks(true)...)
	h.in(t, func() error { return RemoveForward(h.bridge) })
	if _, comments := h.forwardChain(t); len(comments) != 2 {
		t.Fatalf("after RemoveForward: rules %q, want the two others", comments)
	}
}

// TestForwardLegacy: the same with iptables-legacy's filter table, through
// its binary.
func TestForwardLegacy(t *testing.T) {
	h := fwdTestSetup(t)
	legacy := needTool(t, "iptables-legacy")
	ipt := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"netns", "exec", h.ns, legacy, "-w"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("iptables-legacy %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ipt("-P", "FORWARD", "DROP")
	natTestRun(t, h.checks(false)...)

	h.in(t, func() error { return EnsureForward(h.bridge) })
	h.in(t, func() error { return EnsureForward(h.bridge) })
	natTestRun(t, h.checks(true)...)
	if n := strings.Count(ipt("-S", "FORWARD"), `--comment "berth: `); n != 3 {
		t.Errorf("after EnsureForward twice: %d rules of berth's, want 3:\n%s", n, ipt("-S", "FORWARD"))
	}

	h.in(t, func() error { return RemoveForward(h.bridge) })
	h.in(t, func() error { return RemoveForward(h.bridge) })
	if got := ipt("-S", "FORWARD"); got != "-P FORWARD DROP\n" {
		t.Errorf("after RemoveForward: %q, want the chain as it was", got)
	}
	natTestRun(t, h.checks(false)...)
}

// TestForwardComments reads the bridge back from the comments.
func TestForwardComments(t *testing.T) {
	for _, k := range forwardRules {
		if got := forwardBridge(k.comment("bt-b0123456789a")); got != "bt-b0123456789a" {
			t.Errorf("forwardBridge(%q) = %q", k.comment("bt-b0123456789a"), got)
		}
	}
	for _, c := range []string{"", "berth: ", "berth: out of ", "netavark firewall plugin rules", "out of bt-b1"} {
		if got := forwardBridge(c); got != "" {
			t.Errorf("forwardBridge(%q) = %q, want none", c, got)
		}
	}
	for line, want := range map[string]string{
		`-A FORWARD -i b -m comment --comment "berth: out of b" -j ACCEPT`: "berth: out of b",
		`-A FORWARD -m comment --comment plain -j ACCEPT`:                  "plain",
		`-A FORWARD -j DOCKER-USER`:                                        "",
	} {
		if got := iptablesComment(line); got != want {
			t.Errorf("iptablesComment(%q) = %q, want %q", line, got, want)
		}
	}
	if !iptablesDrops([]string{"-P FORWARD DROP"}) || iptablesDrops([]string{"-P FORWARD ACCEPT", "-A FORWARD -j DOCKER-USER"}) ||
		!iptablesDrops([]string{"-P FORWARD ACCEPT", "-A FORWARD -j REJECT --reject-with icmp-port-unreachable"}) {
		t.Error("iptablesDrops misreads a chain")
	}
}
