package network

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func ipamPrefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func ipamPools(t *testing.T, s string) []Pool {
	t.Helper()
	pools, err := ParsePools(s)
	if err != nil {
		t.Fatalf("ParsePools(%q): %v", s, err)
	}
	return pools
}

func TestPoolsParse(t *testing.T) {
	tests := []struct {
		in      string
		want    string // the pools as String() joined by ","
		wantErr string // a substring of the error
	}{
		{in: "10.213.128.0/17:24,10.214.0.0/16:24", want: "10.213.128.0/17:24,10.214.0.0/16:24"},
		{in: " 10.213.0.0/16:24 , ", want: "10.213.0.0/16:24"},
		{in: "10.0.0.0/8:8", want: "10.0.0.0/8:8"},
		{in: "fd00:b::/48:64", want: "fd00:b::/48:64"},
		{in: "", want: "172.17.0.0/16:16,172.18.0.0/15:16,172.20.0.0/14:16,172.24.0.0/13:16,192.168.0.0/16:20"},
		{in: "10.0.0.0/8", wantErr: `address pool "10.0.0.0/8": want base:size`},
		{in: "10.213.0.0/16:24,10.0.0.0/8:x", wantErr: `address pool "10.0.0.0/8:x": size "x" is not a number`},
		{in: "10.0.0.0/33:24", wantErr: `address pool "10.0.0.0/33:24": base:`},
		{in: "10.213.0.0/16:8", wantErr: `address pool "10.213.0.0/16:8": size 8 is not between 16 and 30`},
		{in: "10.213.0.0/16:31", wantErr: `address pool "10.213.0.0/16:31": size 31 is not between 16 and 30`},
		{in: "172.17.0.0/12:16", wantErr: `address pool "172.17.0.0/12:16": base 172.17.0.0/12 has host bits set (did you mean 172.16.0.0/12?)`},
		{in: ",", wantErr: `no pool`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			pools, err := ParsePools(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidPool) {
					t.Fatalf("ParsePools(%q) = %v, %v; want ErrInvalidPool containing %q", tt.in, pools, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePools(%q): %v", tt.in, err)
			}
			var got []string
			for _, p := range pools {
				got = append(got, p.String())
			}
			if g := strings.Join(got, ","); g != tt.want {
				t.Errorf("ParsePools(%q) = %s, want %s", tt.in, g, tt.want)
			}
		})
	}
}

func TestPoolsDefault(t *testing.T) {
	tests := []struct {
		name  string
		taken []string
		want  string
	}{
		{"nothing taken", nil, "172.17.0.0/16"},
		{"host docker", []string{"172.17.0.0/16"}, "172.18.0.0/16"},
		{"docker and one compose network", []string{"172.17.0.0/16", "172.18.0.0/16"}, "172.19.0.0/16"},
		{"a /24 inside 172.18", []string{"172.17.0.0/16", "172.18.5.0/24"}, "172.19.0.0/16"},
		{"all of 172.16/12", []string{"172.16.0.0/12"}, "192.168.0.0/20"},
		{"and the first /20", []string{"172.16.0.0/12", "192.168.1.0/24"}, "192.168.16.0/20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PickSubnet(DefaultPools(), ipamPrefixes(t, tt.taken...))
			if err != nil || got.String() != tt.want {
				t.Errorf("PickSubnet(default, %v) = %v, %v; want %s", tt.taken, got, err, tt.want)
			}
		})
	}
}

func TestSubnetPick(t *testing.T) {
	tests := []struct {
		name    string
		pools   string
		taken   []string
		want    string
		wantErr error
	}{
		{name: "first", pools: "10.213.0.0/16:24", want: "10.213.0.0/24"},
		{name: "skips taken", pools: "10.213.0.0/16:24", taken: []string{"10.213.0.0/24", "10.213.1.0/24"}, want: "10.213.2.0/24"},
		{name: "skips a host route covering several", pools: "10.213.0.0/16:24", taken: []string{"10.213.0.0/20"}, want: "10.213.16.0/24"},
		{name: "skips a smaller prefix inside", pools: "10.213.0.0/16:24", taken: []string{"10.213.0.128/25"}, want: "10.213.1.0/24"},
		{name: "host address prefix", pools: "10.213.0.0/16:24", taken: []string{"10.213.0.7/32"}, want: "10.213.1.0/24"},
		{name: "other family ignored", pools: "10.213.0.0/16:24", taken: []string{"fd00::/8"}, want: "10.213.0.0/24"},
		{name: "next pool", pools: "10.213.0.0/23:24,10.214.0.0/16:24", taken: []string{"10.213.0.0/16"}, want: "10.214.0.0/24"},
		{name: "huge pool walked in jumps", pools: "10.0.0.0/8:24", taken: []string{"10.0.0.0/9", "10.128.0.0/10", "10.192.0.0/24"}, want: "10.192.1.0/24"},
		{name: "pool at the end of the space", pools: "255.255.255.0/24:30", taken: []string{"255.255.255.0/24"}, wantErr: ErrNoFreeSubnet},
		{name: "ipv6", pools: "fd00:b::/48:64", taken: []string{"fd00:b::/64"}, want: "fd00:b:0:1::/64"},
		{name: "all taken", pools: "10.213.0.0/22:24", taken: []string{"10.213.0.0/23", "10.213.2.0/24", "10.213.3.0/24"}, wantErr: ErrNoFreeSubnet},
		{name: "covered by default route", pools: "10.213.0.0/16:24", taken: []string{"0.0.0.0/0"}, wantErr: ErrNoFreeSubnet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PickSubnet(ipamPools(t, tt.pools), ipamPrefixes(t, tt.taken...))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("PickSubnet = %v, %v; want %v", got, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), PoolsEnv) {
					t.Errorf("error %q does not say what to do (%s)", err, PoolsEnv)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("PickSubnet = %v, %v; want %s", got, err, tt.want)
			}
			for _, p := range ipamPrefixes(t, tt.taken...) {
				if Overlaps(got, p) {
					t.Errorf("picked %s overlaps taken %s", got, p)
				}
			}
		})
	}
	t.Run("invalid pool", func(t *testing.T) {
		_, err := PickSubnet([]Pool{{Base: netip.MustParsePrefix("10.0.0.0/16"), Size: 12}}, nil)
		if !errors.Is(err, ErrInvalidPool) {
			t.Fatalf("err = %v, want ErrInvalidPool", err)
		}
	})
}

func TestOverlaps(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"10.213.7.0/24", "10.213.0.0/16", true},
		{"10.213.0.0/16", "10.213.7.0/24", true},
		{"10.213.7.0/24", "10.213.7.0/24", true},
		{"10.213.7.0/24", "10.213.8.0/24", false},
		{"10.213.6.0/23", "10.213.7.0/24", true},
		{"10.213.7.0/25", "10.213.7.128/25", false},
		{"10.213.7.0/24", "10.213.7.9/32", true},
		{"0.0.0.0/0", "192.168.1.0/24", true},
		{"10.0.0.0/8", "fd00::/8", false},
	}
	for _, tt := range tests {
		if got := Overlaps(netip.MustParsePrefix(tt.a), netip.MustParsePrefix(tt.b)); got != tt.want {
			t.Errorf("Overlaps(%s, %s) = %t, want %t", tt.a, tt.b, got, tt.want)
		}
	}
	if Overlaps(netip.Prefix{}, netip.MustParsePrefix("0.0.0.0/0")) {
		t.Error("the zero prefix overlaps 0.0.0.0/0")
	}
}

func TestSubnetCheckSubnets(t *testing.T) {
	tests := []struct {
		name string
		nets map[string]string
		want string // error message, "" for none
	}{
		{"disjoint", map[string]string{"front": "10.213.7.0/24", "back": "10.213.8.0/24"}, ""},
		{"unset subnets", map[string]string{"front": "", "back": "", "db": "10.213.8.0/24"}, ""},
		{"overlap", map[string]string{"front": "10.213.7.0/24", "back": "10.213.0.0/16"},
			`networks "back" and "front" overlap: 10.213.0.0/16 and 10.213.7.0/24`},
		{"first pair by name", map[string]string{"c": "10.1.0.0/16", "b": "10.1.2.0/24", "a": "10.2.0.0/16", "d": "10.2.0.0/24"},
			`networks "a" and "d" overlap: 10.2.0.0/16 and 10.2.0.0/24`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nets := map[string]netip.Prefix{}
			for name, s := range tt.nets {
				if s != "" {
					nets[name] = netip.MustParsePrefix(s)
				} else {
					nets[name] = netip.Prefix{}
				}
			}
			err := CheckSubnets(nets)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckSubnets: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want || !errors.Is(err, ErrSubnetsOverlap) {
				t.Fatalf("CheckSubnets = %v; want ErrSubnetsOverlap %q", err, tt.want)
			}
		})
	}
}

func TestSubnetGateway(t *testing.T) {
	tests := []struct{ subnet, want string }{
		{"10.213.7.0/24", "10.213.7.1"},
		{"172.18.0.0/16", "172.18.0.1"},
		{"10.213.7.8/29", "10.213.7.9"},
		{"10.213.7.5/24", "10.213.7.1"}, // host bits ignored
		{"fd00:b::/64", "fd00:b::1"},
		{"10.213.7.7/32", "invalid IP"},
	}
	for _, tt := range tests {
		if got := Gateway(netip.MustParsePrefix(tt.subnet)); got.String() != tt.want {
			t.Errorf("Gateway(%s) = %s, want %s", tt.subnet, got, tt.want)
		}
	}
	if got := Gateway(netip.Prefix{}); got.IsValid() {
		t.Errorf("Gateway(zero) = %s, want the zero Addr", got)
	}
}

func TestSubnetCheckAddress(t *testing.T) {
	tests := []struct {
		subnet, addr string
		wantErr      error
		want         string
	}{
		{"10.213.7.0/24", "10.213.7.5", nil, ""},
		{"10.213.7.0/24", "10.213.7.254", nil, ""},
		{"10.213.7.0/24", "10.213.8.5", ErrAddressOutside, "ipv4_address 10.213.8.5 is outside the subnet 10.213.7.0/24"},
		{"10.213.7.0/24", "10.213.7.0", ErrAddressReserved, "ipv4_address 10.213.7.0 is the network address of the subnet 10.213.7.0/24"},
		{"10.213.7.0/24", "10.213.7.255", ErrAddressReserved, "ipv4_address 10.213.7.255 is the broadcast address of the subnet 10.213.7.0/24"},
		{"10.213.7.0/24", "10.213.7.1", ErrAddressReserved, "ipv4_address 10.213.7.1 is the gateway of the subnet 10.213.7.0/24"},
		{"10.213.7.0/24", "::ffff:10.213.7.9", nil, ""},
		{"10.213.7.0/24", "fd00::9", ErrAddressOutside, "ipv6_address fd00::9 is outside the subnet 10.213.7.0/24"},
		{"fd00:b::/64", "fd00:b::ffff:ffff:ffff:ffff", nil, ""},
		{"fd00:b::/64", "fd00:b::1", ErrAddressReserved, "ipv6_address fd00:b::1 is the gateway of the subnet fd00:b::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := CheckAddress(netip.MustParsePrefix(tt.subnet), netip.MustParseAddr(tt.addr))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckAddress: %v", err)
				}
				return
			}
			var ae *AddressError
			if !errors.Is(err, tt.wantErr) || !errors.As(err, &ae) || err.Error() != tt.want {
				t.Fatalf("CheckAddress = %v; want %v %q", err, tt.wantErr, tt.want)
			}
		})
	}
	err := CheckAddress(netip.MustParsePrefix("10.213.7.0/24"), netip.Addr{})
	if !errors.Is(err, ErrAddressOutside) {
		t.Errorf("CheckAddress(zero) = %v, want ErrAddressOutside", err)
	}
	// With the network's name, as the store reports it.
	e := &AddressError{Network: "back", Subnet: netip.MustParsePrefix("10.213.7.0/24"), Addr: netip.MustParseAddr("10.213.8.5"), Err: ErrAddressOutside}
	if want := `ipv4_address 10.213.8.5 is outside the subnet 10.213.7.0/24 of network "back"`; e.Error() != want {
		t.Errorf("AddressError = %q, want %q", e, want)
	}
}

func TestIpamAddrArithmetic(t *testing.T) {
	add := []struct {
		a    string
		n    uint64
		want string // "" for past the end
	}{
		{"10.0.0.255", 1, "10.0.1.0"},
		{"10.0.0.0", 1 << 24, "11.0.0.0"},
		{"255.255.255.254", 1, "255.255.255.255"},
		{"255.255.255.255", 1, ""},
		{"fd00::ffff:ffff:ffff:ffff", 1, "fd00:0:0:1::"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1, ""},
	}
	for _, tt := range add {
		got, ok := ipamAddrAdd(netip.MustParseAddr(tt.a), tt.n)
		if tt.want == "" && ok || tt.want != "" && (!ok || got.String() != tt.want) {
			t.Errorf("ipamAddrAdd(%s, %d) = %s, %t; want %q", tt.a, tt.n, got, ok, tt.want)
		}
	}
	last := []struct{ p, want string }{
		{"10.213.7.0/24", "10.213.7.255"},
		{"10.213.7.8/29", "10.213.7.15"},
		{"0.0.0.0/0", "255.255.255.255"},
		{"10.1.1.1/32", "10.1.1.1"},
		{"fd00:b::/64", "fd00:b::ffff:ffff:ffff:ffff"},
		{"fd00::/8", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	}
	for _, tt := range last {
		if got := ipamLast(netip.MustParsePrefix(tt.p)); got.String() != tt.want {
			t.Errorf("ipamLast(%s) = %s, want %s", tt.p, got, tt.want)
		}
	}
}

func TestSubnetHostRoutes(t *testing.T) {
	got, err := HostRoutes()
	if err != nil {
		t.Fatalf("HostRoutes: %v", err)
	}
	for _, p := range got {
		if p.Bits() == 0 || p.Addr().IsLoopback() || !p.Addr().Is4() || p != p.Masked() {
			t.Errorf("HostRoutes has %s: want masked IPv4 prefixes, no default route, no loopback", p)
		}
	}
	// The link of the default route has an address whose prefix (the
	// subnet of the host's own network) must be avoided.
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("netlink RouteList: %v", err)
	}
	for _, r := range routes {
		if r.Dst != nil && !r.Dst.IP.IsUnspecified() || r.LinkIndex == 0 {
			continue
		}
		link, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			t.Fatalf("netlink LinkByIndex(%d): %v", r.LinkIndex, err)
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			t.Fatalf("netlink AddrList(%s): %v", link.Attrs().Name, err)
		}
		for _, a := range addrs {
			p, ok := ipamPrefixOf(a.IPNet)
			if !ok || p.Addr().IsLoopback() {
				continue
			}
			if !slices.Contains(got, p) {
				t.Errorf("HostRoutes = %v: misses %s of %s, the default route's link", got, p, link.Attrs().Name)
			}
			if p.Bits() > 30 {
				continue
			}
			if _, err := PickSubnet([]Pool{{Base: p, Size: p.Bits()}}, got); !errors.Is(err, ErrNoFreeSubnet) {
				t.Errorf("PickSubnet from the host's own subnet %s: %v, want ErrNoFreeSubnet", p, err)
			}
		}
	}
}
