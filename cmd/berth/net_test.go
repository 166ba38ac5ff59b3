package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// projectLinks lists the bridges and veth host ends of a project's
// networks, as its network store records them, to check after down.
func projectLinks(t *testing.T, root string) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(root, "networks"))
	var links []string
	for _, e := range entries {
		var n struct{ Bridge string }
		data, err := os.ReadFile(filepath.Join(root, "networks", e.Name(), "network.json"))
		if err != nil {
			continue
		}
		if err := json.Unmarshal(data, &n); err != nil {
			t.Fatal(err)
		}
		links = append(links, n.Bridge)
		if ifc, err := net.InterfaceByName(n.Bridge); err == nil {
			// The veth host ends plugged into it.
			all, _ := net.Interfaces()
			for _, other := range all {
				if master, _ := os.Readlink(filepath.Join("/sys/class/net", other.Name, "master")); filepath.Base(master) == ifc.Name {
					links = append(links, other.Name)
				}
			}
		}
	}
	return links
}

// checkNetworkGone fails if any of links, a lease or network record, or the
// project's nftables table is left.
func checkNetworkGone(t *testing.T, root, project string, links []string) {
	t.Helper()
	for _, l := range links {
		if _, err := net.InterfaceByName(l); err == nil {
			t.Errorf("interface %s left behind", l)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, "networks"))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("network record %s left behind", e.Name())
		}
	}
	tables, err := network.Tables("berth_" + project)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) > 0 {
		t.Errorf("nftables tables left behind: %v", tables)
	}
}

// TestProjectsIsolated: a container of one project cannot reach a container
// of another, though both run on bridges of the same host.
func TestProjectsIsolated(t *testing.T) {
	shared := t.TempDir()
	compose := func(name, cmd string) string {
		return "name: " + name + "\nservices:\n  web:\n    image: bb\n    volumes: [\"" + shared + ":/shared\"]\n    command: [\"sh\", \"-c\", " + cmd + "]\n"
	}
	dirB, rootB := testProject(t, compose("isob",
		`"mkdir -p /www && echo b > /www/index.html && ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1 > /shared/b.tmp && mv /shared/b.tmp /shared/b && exec httpd -f -p 80 -h /www"`))
	dirA, rootA := testProject(t, compose("isoa",
		`"until [ -f /shared/b ]; do sleep 0.05; done; if wget -T 2 -qO- http://$(cat /shared/b)/; then echo reached; else echo isolated; fi"`))
	runBerth(t, dirB, rootB, "up", "-d")
	linksB := projectLinks(t, rootB)
	runBerth(t, dirA, rootA, "up", "-d")
	deadline := time.Now().Add(20 * time.Second)
	var logs string
	for time.Now().Before(deadline) {
		logs = runBerth(t, dirA, rootA, "logs")
		if strings.Contains(logs, "reached") || strings.Contains(logs, "isolated") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs, "isolated") {
		t.Errorf("project isoa reached a container of project isob:\n%s", logs)
	}
	runBerth(t, dirB, rootB, "down")
	checkNetworkGone(t, rootB, "isob", linksB)
}

// TestPublishedUDP: a published UDP port answers from the host on
// 127.0.0.1, through the kernel's DNAT.
func TestPublishedUDP(t *testing.T) {
	imagetest.NeedRoot(t)
	rootfs := t.TempDir()
	build := exec.Command(goTool(t), "build", "-o", filepath.Join(rootfs, "udpecho"), "./testdata/udpecho")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build udpecho: %v\n%s", err, out)
	}
	dir, root := testProject(t, `name: udp
services:
  echo:
    image: udpecho
    ports: ["18096:9999/udp"]
    command: ["/udpecho", ":9999"]
`)
	tarball := filepath.Join(dir, "udpecho.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	runBerth(t, dir, root, "image", "import", tarball, "udpecho")
	runBerth(t, dir, root, "up", "-d")

	c, err := net.Dial("udp", "127.0.0.1:18096")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 100)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) == "echo: ping" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no echo through the published UDP port: %v (%q)", err, buf[:n])
		}
	}
	if ps := runBerth(t, dir, root, "ps"); !strings.Contains(ps, "0.0.0.0:18096->9999/udp") {
		t.Errorf("ps does not show the UDP port:\n%s", ps)
	}
}

// goTool is the go command that runs the tests.
func goTool(t *testing.T) string {
	p, err := exec.LookPath("go")
	if err != nil && fileExists("/usr/local/go/bin/go") {
		return "/usr/local/go/bin/go"
	}
	if err != nil {
		t.Skip("no go command to build the test's image")
	}
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
