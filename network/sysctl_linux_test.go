package network

import (
	"os"
	"strings"
	"testing"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// linkSysctl reads a /proc/sys value on the calling thread.
func linkSysctl(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + key)
	if err != nil {
		t.Error(err)
	}
	return strings.TrimSpace(string(b))
}

// TestSysctlInNamespace runs the setters on a thread inside a namespace of
// its own: /proc/sys/net answers for the calling thread's namespace, so the
// host's settings are never touched.
func TestSysctlInNamespace(t *testing.T) {
	imagetest.NeedRoot(t)
	ns := linkTestNS(t)
	hostForward := linkSysctl(t, "net/ipv4/ip_forward")
	err := linkInNS(t, ns, func() error {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0\n"), 0); err != nil {
			return err
		}
		if err := EnableForwarding(); err != nil {
			return err
		}
		if got := linkSysctl(t, "net/ipv4/ip_forward"); got != "1" {
			t.Errorf("ip_forward = %s after EnableForwarding", got)
		}
		if err := EnableForwarding(); err != nil {
			t.Errorf("second EnableForwarding: %v", err)
		}
		if got := linkSysctl(t, "net/ipv4/conf/lo/route_localnet"); got != "0" {
			t.Errorf("route_localnet on lo = %s before", got)
		}
		if err := SetRouteLocalnet("lo"); err != nil {
			return err
		}
		if got := linkSysctl(t, "net/ipv4/conf/lo/route_localnet"); got != "1" {
			t.Errorf("route_localnet on lo = %s after SetRouteLocalnet", got)
		}
		for _, bad := range []string{"../../ip_forward", "..", "", "bt-lnothere"} {
			if err := SetRouteLocalnet(bad); err == nil {
				t.Errorf("SetRouteLocalnet(%q): no error", bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := linkSysctl(t, "net/ipv4/ip_forward"); got != hostForward {
		t.Errorf("the host's ip_forward changed: %s, was %s", got, hostForward)
	}
}
