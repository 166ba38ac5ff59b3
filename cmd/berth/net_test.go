package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/network"
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
