package network

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestStoreRemoveUnusedNetwork: leases that held disowns (a container a
// killed up never created) do not keep a network; the others do, and are
// named.
func TestStoreRemoveUnusedNetwork(t *testing.T) {
	s := ipamTestStore(t, "10.213.0.0/16:24")
	ipamTestNetwork(t, s, "p_front", "10.213.9.0/24")
	for _, c := range []string{"p-web-1", "q-app-1"} {
		if _, err := s.Lease("p_front", c, netip.Addr{}, nil, strings.SplitN(c, "-", 2)[0]); err != nil {
			t.Fatalf("Lease: %v", err)
		}
	}
	var asked []string
	onlyQ := func(l Lease) bool {
		asked = append(asked, l.Container+"/"+l.Project)
		return l.Project == "q"
	}
	err := s.RemoveUnusedNetwork("p_front", onlyQ)
	if want := `containers still attached: "q-app-1";`; !errors.Is(err, ErrNetworkInUse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("RemoveUnusedNetwork = %v; want ErrNetworkInUse %q", err, want)
	}
	if strings.Join(asked, " ") != "p-web-1/p q-app-1/q" {
		t.Errorf("held was asked about %q", asked)
	}
	if _, err := s.Network("p_front"); err != nil {
		t.Fatalf("refused removal removed the network: %v", err)
	}
	if err := s.RemoveUnusedNetwork("p_front", func(Lease) bool { return false }); err != nil {
		t.Fatalf("RemoveUnusedNetwork with leftover leases only: %v", err)
	}
	if _, err := s.Network("p_front"); !errors.Is(err, ErrNetworkNotFound) {
		t.Errorf("Network after removal = %v, want ErrNetworkNotFound", err)
	}
	if leases, err := s.ContainerLeases("q-app-1"); err != nil || len(leases) != 0 {
		t.Errorf("the leases went with the network? %v, %v", leases, err)
	}
}
