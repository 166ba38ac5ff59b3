package network

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ipamTestStore opens a store in a fresh folder that picks from pools (a
// ParsePools value) and sees routes as the host's routes.
func ipamTestStore(t *testing.T, pools string, routes ...string) *Store {
	t.Helper()
	s, err := OpenStore(filepath.Join(t.TempDir(), "networks"))
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return ipamTestStoreAt(t, s.Dir(), pools, routes...)
}

// ipamTestStoreAt opens another Store on the folder dir.
func ipamTestStoreAt(t *testing.T, dir, pools string, routes ...string) *Store {
	t.Helper()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	if s, err = s.WithPools(ipamPools(t, pools)); err != nil {
		t.Fatalf("WithPools: %v", err)
	}
	taken := ipamPrefixes(t, routes...)
	s.routes = func() ([]netip.Prefix, error) { return taken, nil }
	return s
}

// ipamTestNetwork creates a network, failing the test on error.
func ipamTestNetwork(t *testing.T, s *Store, name, subnet string) Network {
	t.Helper()
	n := Network{Name: name, Project: "p", Bridge: "br-" + name}
	if subnet != "" {
		n.Subnet = netip.MustParsePrefix(subnet)
	}
	n, err := s.CreateNetwork(n)
	if err != nil {
		t.Fatalf("CreateNetwork(%s): %v", name, err)
	}
	return n
}

func TestStoreCreateNetwork(t *testing.T) {
	s := ipamTestStore(t, "10.213.0.0/16:24", "10.213.0.0/24")
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	front, err := s.CreateNetwork(Network{
		Name: "p_front", Project: "p", Bridge: "br-front",
		Subnet: netip.MustParsePrefix("10.213.7.0/24"), Labels: map[string]string{"a": "b"}, Created: created,
	})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	if front.Gateway.String() != "10.213.7.1" || !front.Created.Equal(created) {
		t.Errorf("created %+v: want gateway 10.213.7.1, created %s", front, created)
	}
	got, err := s.Network("p_front")
	if err != nil || got.Subnet != front.Subnet || got.Gateway != front.Gateway || got.Bridge != "br-front" ||
		got.Labels["a"] != "b" || got.Project != "p" || !got.Created.Equal(created) {
		t.Errorf("Network(p_front) = %+v, %v; want %+v", got, err, front)
	}

	// Picked: not the host route 10.213.0.0/24, not front's subnet.
	picked := ipamTestNetwork(t, s, "p_default", "")
	if picked.Subnet.String() != "10.213.1.0/24" || picked.Gateway.String() != "10.213.1.1" || picked.Created.IsZero() {
		t.Errorf("picked %+v: want 10.213.1.0/24, gateway 10.213.1.1, a creation time", picked)
	}

	tests := []struct {
		name    string
		n       Network
		wantErr error
		want    string // a substring of the message
	}{
		{"name taken", Network{Name: "p_front", Subnet: netip.MustParsePrefix("10.99.0.0/24")},
			ErrNetworkExists, `network "p_front" already exists`},
		{"overlap", Network{Name: "p_back", Subnet: netip.MustParsePrefix("10.213.0.0/16")},
			ErrSubnetsOverlap, `subnet 10.213.0.0/16 of network "p_back" overlaps the subnet 10.213.1.0/24 of network "p_default"`},
		{"bridge taken", Network{Name: "p_back", Bridge: "br-front", Subnet: netip.MustParsePrefix("10.99.0.0/24")},
			ErrNetworkExists, `bridge "br-front" is already the bridge of network "p_front"`},
		{"host bits", Network{Name: "p_back", Subnet: netip.MustParsePrefix("10.99.0.5/24")},
			ErrInvalidSubnet, `subnet 10.99.0.5/24 has host bits set (did you mean 10.99.0.0/24?)`},
		{"too small", Network{Name: "p_back", Subnet: netip.MustParsePrefix("10.99.0.0/31")},
			ErrInvalidSubnet, `subnet 10.99.0.0/31 is too small`},
		{"gateway outside", Network{Name: "p_back", Subnet: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("10.98.0.1")},
			ErrAddressOutside, `gateway 10.98.0.1 is outside the subnet 10.99.0.0/24 of network "p_back"`},
		{"gateway broadcast", Network{Name: "p_back", Subnet: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("10.99.0.255")},
			ErrAddressReserved, `gateway 10.99.0.255 is the broadcast address`},
		{"empty name", Network{Subnet: netip.MustParsePrefix("10.99.0.0/24")}, ErrInvalidName, `invalid network name ""`},
		{"escaping name", Network{Name: "../etc", Subnet: netip.MustParsePrefix("10.99.0.0/24")}, ErrInvalidName, `invalid network name "../etc"`},
		{"dot name", Network{Name: ".lock", Subnet: netip.MustParsePrefix("10.99.0.0/24")}, ErrInvalidName, `invalid network name ".lock"`},
		{"slash", Network{Name: "a/b", Subnet: netip.MustParsePrefix("10.99.0.0/24")}, ErrInvalidName, `invalid network name "a/b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.CreateNetwork(tt.n)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CreateNetwork = %v; want %v containing %q", err, tt.wantErr, tt.want)
			}
		})
	}
	if _, err := s.Network("p_back"); !errors.Is(err, ErrNetworkNotFound) {
		t.Errorf("a refused network was recorded: Network(p_back) = %v", err)
	}
	// A custom gateway is kept.
	n, err := s.CreateNetwork(Network{Name: "p_gw", Subnet: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("10.99.0.254")})
	if err != nil || n.Gateway.String() != "10.99.0.254" {
		t.Errorf("CreateNetwork with gateway = %+v, %v", n, err)
	}
}

func TestStoreEnsureNetwork(t *testing.T) {
	s := ipamTestStore(t, "10.213.0.0/16:24")
	want := Network{Name: "p_back", Project: "p", Bridge: "br-back", Subnet: netip.MustParsePrefix("10.213.9.0/24")}
	first, created, err := s.EnsureNetwork(want)
	if err != nil || !created {
		t.Fatalf("EnsureNetwork = %+v, %t, %v; want created", first, created, err)
	}
	tests := []struct {
		name    string
		n       Network
		wantErr string // "" for the existing network back
	}{
		{"same", want, ""},
		{"no subnet said", Network{Name: "p_back"}, ""},
		{"other labels", Network{Name: "p_back", Subnet: want.Subnet, Labels: map[string]string{"x": "y"}}, ""},
		{"other subnet", Network{Name: "p_back", Subnet: netip.MustParsePrefix("10.213.10.0/24")},
			`network "p_back" exists with subnet 10.213.9.0/24, not 10.213.10.0/24: remove it first (berth down) to change it`},
		{"other gateway", Network{Name: "p_back", Gateway: netip.MustParseAddr("10.213.9.9")},
			`network "p_back" exists with gateway 10.213.9.1, not 10.213.9.9`},
		{"internal", Network{Name: "p_back", Internal: true}, `network "p_back" exists with internal false, not true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, created, err := s.EnsureNetwork(tt.n)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNetworkMismatch) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("EnsureNetwork = %v; want ErrNetworkMismatch %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || created || got.Subnet != first.Subnet || got.Bridge != "br-back" || !got.Created.Equal(first.Created) {
				t.Fatalf("EnsureNetwork = %+v, %t, %v; want the existing %+v", got, created, err, first)
			}
		})
	}
	// Without a subnet, a new one is picked.
	n, created, err := s.EnsureNetwork(Network{Name: "p_default"})
	if err != nil || !created || n.Subnet.String() != "10.213.0.0/24" {
		t.Errorf("EnsureNetwork(p_default) = %+v, %t, %v; want created on 10.213.0.0/24", n, created, err)
	}
}

func TestStoreNetworks(t *testing.T) {
	s := ipamTestStore(t, "10.213.0.0/16:24")
	for _, name := range []string{"zeta", "Alpha", "p_default", "b.1"} {
		ipamTestNetwork(t, s, name, "")
	}
	// What a crash half-way through create leaves: a folder without
	// network.json, and a temporary file.
	if err := os.Mkdir(filepath.Join(s.Dir(), "half"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), "half", ".network.json.tmp-1"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	nets, err := s.Networks()
	if err != nil {
		t.Fatalf("Networks: %v", err)
	}
	var names []string
	subnets := map[string]netip.Prefix{}
	for _, n := range nets {
		names = append(names, n.Name)
		subnets[n.Name] = n.Subnet
	}
	if got := strings.Join(names, " "); got != "Alpha b.1 p_default zeta" {
		t.Errorf("Networks = %s, want Alpha b.1 p_default zeta", got)
	}
	if err := CheckSubnets(subnets); err != nil {
		t.Errorf("picked subnets overlap: %v", err)
	}
	if _, err := s.Network("half"); !errors.Is(err, ErrNetworkNotFound) {
		t.Errorf("Network(half) = %v, want ErrNetworkNotFound", err)
	}
	// And the name can be created over it.
	ipamTestNetwork(t, s, "half", "")

	// Another Store on the folder, as another process, sees the same.
	other := ipamTestStoreAt(t, s.Dir(), "10.213.0.0/16:24")
	if nets2, err := other.Networks(); err != nil || len(nets2) != 5 {
		t.Errorf("Networks from another Store = %d, %v; want 5", len(nets2), err)
	}
}

func TestStoreRemoveNetwork(t *testing.T) {
	s := ipamTestStore(t, "10.213.0.0/16:24")
	ipamTestNetwork(t, s, "p_back", "10.213.7.0/24")
	for _, c := range []string{"p-web-1", "p-db-1"} {
		if _, err := s.Lease("p_back", c, netip.Addr{}, nil, "p"); err != nil {
			t.Fatalf("Lease: %v", err)
		}
	}
	err := s.RemoveNetwork("p_back")
	if want := `network "p_back": remove: containers still attached: "p-web-1", "p-db-1"`; !errors.Is(err, ErrNetworkInUse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("RemoveNetwork with leases = %v; want ErrNetworkInUse %q", err, want)
	}
	if _, err := s.Network("p_back"); err != nil {
		t.Fatalf("refused RemoveNetwork removed it: %v", err)
	}
	if err := s.ReleaseContainer("p-web-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release("p_back", "p-db-1"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // gone is no error
		if err := s.RemoveNetwork("p_back"); err != nil {
			t.Fatalf("RemoveNetwork: %v", err)
		}
	}
	if _, err := s.Network("p_back"); !errors.Is(err, ErrNetworkNotFound) {
		t.Errorf("Network after remove = %v, want ErrNetworkNotFound", err)
	}
	if _, err := s.Leases("p_back"); !errors.Is(err, ErrNetworkNotFound) {
		t.Errorf("Leases after remove = %v, want ErrNetworkNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "p_back")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the network's folder is left: %v", err)
	}
	// A crash's leftover, a folder with leases but no network.json, is
	// removed without complaint.
	if err := os.MkdirAll(filepath.Join(s.Dir(), "stale"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), "stale", ipamLeasesFile), []byte(`{"leases":[{"container":"x","addr":"10.1.0.2"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveNetwork("stale"); err != nil {
		t.Errorf("RemoveNetwork of a leftover folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "stale")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the leftover folder is still there: %v", err)
	}
	if err := s.RemoveNetwork("../x"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("RemoveNetwork(../x) = %v, want ErrInvalidName", err)
	}
	// The subnet is free again.
	if n := ipamTestNetwork(t, s, "p_other", "10.213.7.0/24"); n.Subnet.String() != "10.213.7.0/24" {
		t.Errorf("reuse of a removed subnet: %+v", n)
	}
}

// TestStoreAtomic checks that readers never see a half-written file while
// writers change it, and that no temporary file is left behind.
func TestStoreAtomic(t *testing.T) {
	s := ipamTestStore(t, "10.213.0.0/16:24")
	ipamTestNetwork(t, s, "p_default", "10.213.0.0/24")
	done := make(chan struct{})
	var reads int
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := s.Leases("p_default"); err != nil {
				readErr = err
				return
			}
			if _, err := s.Networks(); err != nil {
				readErr = err
				return
			}
			reads++
		}
	})
	for i := range 40 {
		c := "c" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if _, err := s.Lease("p_default", c, netip.Addr{}, []string{"svc", c}, "p"); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := s.Release("p_default", c); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("a reader failed after %d reads: %v", reads, readErr)
	}
	err := filepath.WalkDir(s.Dir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
