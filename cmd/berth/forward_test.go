package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// TestForwardPolicyDropped runs a project beside a firewall that drops
// forwarded traffic, as docker leaves the host (iptables FORWARD policy
// DROP, br_netfilter on): berth's accept rules in that chain let a
// container reach another machine and that machine reach a published port;
// without them both are dropped; `up` puts them back and `down` takes them
// away, leaving the chain as it found it.
//
// The host's own firewall is never touched: berth runs, through nsenter,
// in a network namespace that stands for the host (with its own iptables
// filter table), and the other machine is a namespace behind it. Deleting
// both at cleanup takes everything away. Addresses: 10.213.210.0/24
// between the two, 10.213.211.0/24 for the project.
func TestForwardPolicyDropped(t *testing.T) {
	imagetest.NeedRoot(t)
	iptables, err := exec.LookPath("iptables")
	if err != nil {
		if os.Getenv("BERTH_REQUIRE_ROOT") != "" {
			t.Fatal("iptables is missing: apt-get install iptables")
		}
		t.Skip("iptables is missing: apt-get install iptables")
	}
	suffix := make([]byte, 3)
	rand.Read(suffix)
	host, outside := "bt-dfh"+hex.EncodeToString(suffix), "bt-dfo"+hex.EncodeToString(suffix)
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, ns := range []string{host, outside} {
		run("ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run("ip", "-n", ns, "link", "set", "lo", "up")
	}
	veth := "bt-dfv" + hex.EncodeToString(suffix)
	run("ip", "-n", host, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", outside)
	run("ip", "-n", host, "addr", "add", "10.213.210.1/24", "dev", veth)
	run("ip", "-n", host, "link", "set", veth, "up")
	run("ip", "-n", outside, "addr", "add", "10.213.210.2/24", "dev", "eth0")
	run("ip", "-n", outside, "link", "set", "eth0", "up")
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("from-outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	httpd := exec.Command("ip", "netns", "exec", outside, imagetest.BusyboxPath, "httpd", "-f", "-p", "80", "-h", www)
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { httpd.Process.Kill(); httpd.Wait() })

	inHost := func(args ...string) []string {
		return append([]string{"ip", "netns", "exec", host}, args...)
	}
	ipt := func(args ...string) string {
		t.Helper()
		a := inHost(append([]string{iptables, "-w"}, args...)...)
		return run(a[0], a[1:]...)
	}
	ipt("-P", "FORWARD", "DROP")
	before := ipt("-S")

	dir := faultProject(t, `name: fwdp
services:
  web:
    image: bb
    command: [sh, -c, "mkdir -p /www && echo from-web > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["18480:80"]
  client:
    image: bb
    command: [sleep, "300"]
`)
	if err := os.WriteFile(filepath.Join(dir, "bb.tar"), imagetest.RootfsTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	berth := func(args ...string) *exec.Cmd {
		cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + host, "berth"}, args...)...)
		cmd.Dir = dir
		cmd.Env = faultCmd(dir, root, "10.213.211.0/24:26").Env
		return cmd
	}
	berthRun := func(args ...string) string {
		t.Helper()
		out, err := berth(args...).CombinedOutput()
		if err != nil {
			t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	berthRun("image", "import", "bb.tar", "bb")
	t.Cleanup(func() { berth("down", "-t", "0").Run() })
	berthRun("up", "-d")

	bridge := bridgeOf(root, "fwdp_default")
	rules := ipt("-S", "FORWARD")
	for _, want := range []string{
		"-A FORWARD -i " + bridge + ` -m comment --comment "berth: out of ` + bridge + `" -j ACCEPT`,
		"-A FORWARD -o " + bridge + ` -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "berth: replies to ` + bridge + `" -j ACCEPT`,
		"-A FORWARD -o " + bridge + ` -m conntrack --ctstate DNAT -m comment --comment "berth: published ports on ` + bridge + `" -j ACCEPT`,
	} {
		if !strings.Contains(rules, want+"\n") {
			t.Errorf("the host's FORWARD chain lacks %q:\n%s", want, rules)
		}
	}

	// Out of a container to the other machine, and from it in through
	// the published port.
	check := func(open bool) {
		t.Helper()
		// (busybox 1.35's wget -T crashes: timeout instead.)
		out, err := berth("exec", "client", "timeout", "3", "wget", "-qO-", "http://10.213.210.2/").CombinedOutput()
		if got := err == nil && strings.Contains(string(out), "from-outside"); got != open {
			t.Errorf("container -> outside: %v %q, want through: %v", err, out, open)
		}
		out, err = exec.Command("ip", "netns", "exec", outside, imagetest.BusyboxPath, "timeout", "3",
			imagetest.BusyboxPath, "wget", "-qO-", "http://10.213.210.1:18480/").CombinedOutput()
		if got := err == nil && strings.Contains(string(out), "from-web"); got != open {
			t.Errorf("outside -> published port: %v %q, want through: %v", err, out, open)
		}
	}
	check(true)
	ipt("-F", "FORWARD") // berth's rules are the only ones
	check(false)
	berthRun("up", "-d") // nothing to change, but the rules come back
	check(true)

	berthRun("down")
	if after := ipt("-S"); after != before {
		t.Errorf("down left the host's filter table as\n%s\nnot as it was:\n%s", after, before)
	}
	if out, err := exec.Command("ip", "-n", host, "link", "show", bridge).CombinedOutput(); err == nil {
		t.Errorf("bridge %s left:\n%s", bridge, out)
	}
}
