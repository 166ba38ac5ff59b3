package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ipamLease leases an address, failing the test on error.
func ipamLease(t *testing.T, s *Store, network, container, want string, names ...string) Lease {
	t.Helper()
	var addr netip.Addr
	if want != "" {
		addr = netip.MustParseAddr(want)
	}
	l, err := s.Lease(network, container, addr, names, "p")
	if err != nil {
		t.Fatalf("Lease(%s, %s, %q): %v", network, container, want, err)
	}
	return l
}

// ipamCheckUnique fails the test unless the leases of network are n, each
// on its own address.
func ipamCheckUnique(t *testing.T, s *Store, network string, n int) {
	t.Helper()
	leases, err := s.Leases(network)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]string{}
	for _, l := range leases {
		if other, ok := seen[l.Addr]; ok {
			t.Errorf("%s given to both %s and %s", l.Addr, other, l.Container)
		}
		seen[l.Addr] = l.Container
	}
	if len(leases) != n {
		t.Errorf("%d leases, want %d", len(leases), n)
	}
}

func TestLeaseStable(t *testing.T) {
	s := ipamTestStore(t, "10.213.0.0/16:24")
	ipamTestNetwork(t, s, "p_default", "10.213.7.0/24")
	ipamTestNetwork(t, s, "p_back", "10.213.8.0/24")
	web := ipamLease(t, s, "p_default", "p-web-1", "", "web", "p-web-1")
	db := ipamLease(t, s, "p_default", "p-db-1", "", "db")
	if web.Addr.String() != "10.213.7.2" || db.Addr.String() != "10.213.7.3" {
		t.Fatalf("leases %s, %s; want 10.213.7.2, 10.213.7.3 (the lowest after the gateway)", web.Addr, db.Addr)
	}
	again := ipamLease(t, s, "p_default", "p-web-1", "", "web", "p-web-1", "www", "web", "")
	if again.Addr != web.Addr || !slices.Equal(again.Names, []string{"web", "p-web-1", "www"}) {
		t.Errorf("lease again = %+v; want %s with names updated, deduplicated", again, web.Addr)
	}
	// From another Store (another process), too.
	other := ipamTestStoreAt(t, s.Dir(), "10.213.0.0/16:24")
	if l := ipamLease(t, other, "p_default", "p-web-1", "", "web"); l.Addr != web.Addr {
		t.Errorf("lease from another Store = %s, want %s", l.Addr, web.Addr)
	}
	back := ipamLease(t, s, "p_back", "p-web-1", "", "web")

	leases, err := s.Leases("p_default")
	if err != nil || len(leases) != 2 || leases[0].Container != "p-web-1" || leases[1].Container != "p-db-1" ||
		leases[0].Network != "p_default" || !slices.Equal(leases[0].Names, []string{"web"}) || leases[0].Project != "p" {
		t.Errorf("Leases = %+v, %v", leases, err)
	}
	mine, err := s.ContainerLeases("p-web-1")
	if err != nil || len(mine) != 2 || mine[0].Network != "p_back" || mine[0].Addr != back.Addr || mine[1].Network != "p_default" {
		t.Errorf("ContainerLeases = %+v, %v; want p_back then p_default", mine, err)
	}
	if err := s.ReleaseContainer("p-web-1"); err != nil {
		t.Fatal(err)
	}
	if mine, err := s.ContainerLeases("p-web-1"); err != nil || len(mine) != 0 {
		t.Errorf("ContainerLeases after ReleaseContainer = %+v, %v", mine, err)
	}
	ipamCheckUnique(t, s, "p_default", 1)
	if err := s.Release("p_default", "nobody"); err != nil {
		t.Errorf("Release of no lease: %v", err)
	}
	if err := s.Release("p_gone", "p-db-1"); err != nil {
		t.Errorf("Release on no network: %v", err)
	}
}

func TestLeaseErrors(t *testing.T) {
	s := ipamTestStore(t, "10.213.0.0/16:24")
	ipamTestNetwork(t, s, "back", "10.213.7.0/24")
	ipamLease(t, s, "back", "p-db-1", "10.213.7.5")
	tests := []struct {
		name, network, container, want string
		wantErr                        error
		msg                            string
	}{
		{"want taken", "back", "p-web-1", "10.213.7.5", ErrAddressInUse,
			`ipv4_address 10.213.7.5 on network "back" is in use by container "p-db-1"`},
		{"want outside", "back", "p-web-1", "10.213.8.5", ErrAddressOutside,
			`ipv4_address 10.213.8.5 is outside the subnet 10.213.7.0/24 of network "back"`},
		{"want gateway", "back", "p-web-1", "10.213.7.1", ErrAddressReserved,
			`ipv4_address 10.213.7.1 is the gateway of the subnet 10.213.7.0/24 of network "back"`},
		{"want broadcast", "back", "p-web-1", "10.213.7.255", ErrAddressReserved,
			`ipv4_address 10.213.7.255 is the broadcast address of the subnet 10.213.7.0/24 of network "back"`},
		{"no network", "front", "p-web-1", "", ErrNetworkNotFound, `network "front" not found`},
		{"bad network name", "../back", "p-web-1", "", ErrInvalidName, `invalid network name "../back": only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			l, err := s.Lease(tt.network, tt.container, want, nil, "p")
			if !errors.Is(err, tt.wantErr) || err.Error() != tt.msg {
				t.Fatalf("Lease = %+v, %v; want %v %q", l, err, tt.wantErr, tt.msg)
			}
		})
	}
	if _, err := s.Lease("back", "", netip.Addr{}, nil, "p"); err == nil {
		t.Error("Lease without a container name succeeded")
	}
	ipamCheckUnique(t, s, "back", 1)
}

func TestLeaseWant(t *testing.T) {
	s := ipamTestStore(t, "10.213.0.0/16:24")
	ipamTestNetwork(t, s, "p_default", "10.213.7.0/24")
	if l := ipamLease(t, s, "p_default", "p-db-1", "10.213.7.2"); l.Addr.String() != "10.213.7.2" {
		t.Fatalf("want 10.213.7.2, got %s", l.Addr)
	}
	// The dynamic one goes around it.
	if l := ipamLease(t, s, "p_default", "p-web-1", ""); l.Addr.String() != "10.213.7.3" {
		t.Errorf("dynamic lease = %s, want 10.213.7.3", l.Addr)
	}
	// Asking again for the same address is no clash with itself.
	if l := ipamLease(t, s, "p_default", "p-db-1", "10.213.7.2"); l.Addr.String() != "10.213.7.2" {
		t.Errorf("want again = %s", l.Addr)
	}
	// A new want moves the container's lease (its ipv4_address changed).
	if l := ipamLease(t, s, "p_default", "p-db-1", "::ffff:10.213.7.200"); l.Addr.String() != "10.213.7.200" {
		t.Errorf("moved lease = %s, want 10.213.7.200", l.Addr)
	}
	ipamCheckUnique(t, s, "p_default", 2)
	if l := ipamLease(t, s, "p_default", "p-cache-1", ""); l.Addr.String() != "10.213.7.2" {
		t.Errorf("lease after the move = %s, want the freed 10.213.7.2", l.Addr)
	}
}

func TestLeaseExhaustion(t *testing.T) {
	s := ipamTestStore(t, "10.213.0.0/16:24")
	ipamTestNetwork(t, s, "small", "10.213.7.8/29") // .8 network, .9 gateway, .15 broadcast
	var got []string
	for i := range 5 {
		got = append(got, ipamLease(t, s, "small", fmt.Sprintf("c%d", i), "").Addr.String())
	}
	if want := "10.213.7.10 10.213.7.11 10.213.7.12 10.213.7.13 10.213.7.14"; strings.Join(got, " ") != want {
		t.Fatalf("leases %v, want %s", got, want)
	}
	_, err := s.Lease("small", "c5", netip.Addr{}, nil, "p")
	if want := `network "small": no free address in 10.213.7.8/29 for container "c5": 5 containers attached`; !errors.Is(err, ErrNoFreeAddress) || err.Error() != want {
		t.Fatalf("sixth lease: %v; want ErrNoFreeAddress %q", err, want)
	}
	// Release then reuse: the lowest free address comes back.
	if err := s.Release("small", "c2"); err != nil {
		t.Fatal(err)
	}
	if l := ipamLease(t, s, "small", "c5", ""); l.Addr.String() != "10.213.7.12" {
		t.Errorf("lease after release = %s, want 10.213.7.12", l.Addr)
	}
	// The container that already has one still gets it on a full network.
	if l := ipamLease(t, s, "small", "c0", ""); l.Addr.String() != "10.213.7.10" {
		t.Errorf("existing lease on a full network = %s", l.Addr)
	}
	ipamCheckUnique(t, s, "small", 5)
}

func TestLeaseConcurrent(t *testing.T) {
	for _, own := range []bool{false, true} {
		t.Run(fmt.Sprintf("own Store %t", own), func(t *testing.T) {
			s := ipamTestStore(t, "10.213.0.0/16:24")
			ipamTestNetwork(t, s, "p_default", "10.213.7.0/24")
			const workers, each = 8, 12
			var wg sync.WaitGroup
			errs := make(chan error, workers*each)
			for w := range workers {
				st := s
				if own {
					st = ipamTestStoreAt(t, s.Dir(), "10.213.0.0/16:24")
				}
				wg.Go(func() {
					for i := range each {
						c := fmt.Sprintf("w%d-c%d", w, i)
						l, err := st.Lease("p_default", c, netip.Addr{}, []string{c}, "p")
						if err == nil && !l.Addr.IsValid() {
							err = fmt.Errorf("%s: no address", c)
						}
						if err != nil {
							errs <- err
						}
						// Ask again: the same address.
						if l2, err := st.Lease("p_default", c, netip.Addr{}, []string{c}, "p"); err != nil || l2.Addr != l.Addr {
							errs <- fmt.Errorf("%s: lease again = %s, %v; want %s", c, l2.Addr, err, l.Addr)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			ipamCheckUnique(t, s, "p_default", workers*each)
		})
	}
}

// TestLeaseTwoProcesses leases from two processes at once (this test
// binary re-executed, see TestIpamHelperProcess): flock must keep them
// from handing one address twice.
func TestLeaseTwoProcesses(t *testing.T) {
	s := ipamTestStore(t, "10.213.0.0/16:24")
	ipamTestNetwork(t, s, "p_default", "10.213.7.0/24")
	const each = 40
	var cmds []*exec.Cmd
	for p := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIpamHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			"BERTH_IPAM_HELPER_DIR="+s.Dir(),
			"BERTH_IPAM_HELPER_PREFIX="+fmt.Sprintf("proc%d", p),
			"BERTH_IPAM_HELPER_COUNT="+strconv.Itoa(each))
		cmds = append(cmds, cmd)
	}
	outs := make([][]byte, len(cmds))
	errs := make([]error, len(cmds))
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i := range cmds {
		if errs[i] != nil {
			t.Fatalf("helper process %d: %v\n%s", i, errs[i], outs[i])
		}
		if !strings.Contains(string(outs[i]), "leased "+strconv.Itoa(each)) {
			t.Fatalf("helper process %d did not lease:\n%s", i, outs[i])
		}
	}
	ipamCheckUnique(t, s, "p_default", 2*each)
}

// TestIpamHelperProcess is the child of TestLeaseTwoProcesses; run
// otherwise, it does nothing.
func TestIpamHelperProcess(t *testing.T) {
	dir := os.Getenv("BERTH_IPAM_HELPER_DIR")
	if dir == "" {
		return
	}
	prefix := os.Getenv("BERTH_IPAM_HELPER_PREFIX")
	n, err := strconv.Atoi(os.Getenv("BERTH_IPAM_HELPER_COUNT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := s.Lease("p_default", fmt.Sprintf("%s-c%d", prefix, i), netip.Addr{}, nil, "p"); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("leased %d\n", n)
}

func TestIpamAllocate(t *testing.T) {
	tests := []struct {
		subnet, gateway string
		used            []string
		want            string // "" for none
	}{
		{"10.213.7.0/24", "10.213.7.1", nil, "10.213.7.2"},
		{"10.213.7.0/24", "10.213.7.254", nil, "10.213.7.1"},
		{"10.213.7.0/24", "10.213.7.1", []string{"10.213.7.2", "10.213.7.4"}, "10.213.7.3"},
		{"10.213.7.0/30", "10.213.7.1", nil, "10.213.7.2"},
		{"10.213.7.0/30", "10.213.7.1", []string{"10.213.7.2"}, ""},
		{"fd00:b::/126", "fd00:b::1", []string{"fd00:b::2"}, "fd00:b::3"}, // no broadcast in IPv6
	}
	for _, tt := range tests {
		used := map[netip.Addr]bool{}
		for _, u := range tt.used {
			used[netip.MustParseAddr(u)] = true
		}
		got, ok := ipamAllocate(netip.MustParsePrefix(tt.subnet), netip.MustParseAddr(tt.gateway), used)
		if tt.want == "" && ok || tt.want != "" && got.String() != tt.want {
			t.Errorf("ipamAllocate(%s, %s, %v) = %s, %t; want %q", tt.subnet, tt.gateway, tt.used, got, ok, tt.want)
		}
	}
}
