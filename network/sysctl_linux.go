package network

import (
	"fmt"
	"os"
	"strings"
)

// EnableForwarding sets net.ipv4.ip_forward=1, as docker does: containers
// on a bridge reach the outside only if the host routes for them. It is a
// setting of the host's whole network namespace: from then on the kernel
// routes between all its interfaces, and only the firewall (nat_linux.go)
// says what may cross.
func EnableForwarding() error {
	if err := linkWriteSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return nil
}

// SetRouteLocalnet sets net.ipv4.conf.<iface>.route_localnet=1. Without it
// the kernel drops a packet from or to 127.0.0.0/8 once it would leave lo,
// so a DNAT of 127.0.0.1:PORT to a container behind iface (a published port
// used from the host itself) would go nowhere.
func SetRouteLocalnet(iface string) error {
	if err := linkCheckName(iface); err != nil {
		return fmt.Errorf("route_localnet: %w", err)
	}
	if err := linkWriteSysctl("net/ipv4/conf/"+iface+"/route_localnet", "1"); err != nil {
		return fmt.Errorf("route_localnet on %s: %w", iface, err)
	}
	return nil
}

// linkWriteSysctl writes value to /proc/sys/key unless it is there already:
// reading first spares a write that would fail where /proc/sys is read-only
// (inside a container) but the value is already right. /proc/sys/net
// answers for the network namespace of the calling thread.
func linkWriteSysctl(key, value string) error {
	p := "/proc/sys/" + key
	cur, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(cur)) == value {
		return nil
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(value + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	return f.Close()
}
