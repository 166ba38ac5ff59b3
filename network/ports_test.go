package network

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func natPort(proto, hostIP string, hostPort uint16) PortMapping {
	m := PortMapping{
		Protocol:      proto,
		HostPort:      hostPort,
		ContainerAddr: netip.MustParseAddr("10.213.33.2"),
		ContainerPort: 80,
		Bridge:        "bt-nb0",
	}
	if hostIP != "" {
		m.HostIP = netip.MustParseAddr(hostIP)
	}
	return m
}

func TestCheckPorts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ports []PortMapping
		err   error  // nil: accepted
		msg   string // in the error: both owners, the port
	}{
		{"distinct", []PortMapping{natPort("tcp", "", 80), natPort("tcp", "", 81)}, nil, ""},
		{"protocols apart", []PortMapping{natPort("tcp", "", 80), natPort("udp", "", 80)}, nil, ""},
		{"addresses apart", []PortMapping{natPort("tcp", "127.0.0.1", 80), natPort("tcp", "10.213.40.1", 80)}, nil, ""},
		{"same", []PortMapping{natPort("tcp", "", 80), natPort("tcp", "", 80)},
			ErrPublishedPortConflict, "svc1: port 80->10.213.33.2:80/tcp: published port already claimed by svc0"},
		{"every address first", []PortMapping{natPort("udp", "", 53), natPort("udp", "127.0.0.1", 53)},
			ErrPublishedPortConflict, "svc1: port 127.0.0.1:53->10.213.33.2:80/udp: published port already claimed by svc0 (53->"},
		{"every address second", []PortMapping{natPort("tcp", "10.213.40.1", 80), natPort("tcp", "0.0.0.0", 80)},
			ErrPublishedPortConflict, "by svc0 (10.213.40.1:80->"},
		{"same address", []PortMapping{natPort("tcp", "127.0.0.1", 80), natPort("tcp", "::ffff:127.0.0.1", 80)},
			ErrPublishedPortConflict, "svc0"},
		{"third against first", []PortMapping{natPort("tcp", "", 80), natPort("tcp", "", 81), natPort("tcp", "127.0.0.1", 80)},
			ErrPublishedPortConflict, "svc2: port 127.0.0.1:80"},
		{"protocol", []PortMapping{natPort("sctp", "", 80)}, ErrBadPortMapping, `svc0: port 80->10.213.33.2:80/sctp: invalid port mapping: protocol "sctp"`},
		{"host port 0", []PortMapping{natPort("tcp", "", 0)}, ErrBadPortMapping, "host port 0"},
		{"container port 0", []PortMapping{func() PortMapping { m := natPort("tcp", "", 80); m.ContainerPort = 0; return m }()},
			ErrBadPortMapping, "container port 0"},
		{"no container address", []PortMapping{func() PortMapping { m := natPort("tcp", "", 80); m.ContainerAddr = netip.Addr{}; return m }()},
			ErrBadPortMapping, "container address"},
		{"v6 host address", []PortMapping{natPort("tcp", "fd00::1", 80)}, ErrBadPortMapping, "host address fd00::1 is not IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPorts(tc.ports, func(i int) string { return "svc" + string(rune('0'+i)) })
			if !errors.Is(err, tc.err) {
				t.Fatalf("CheckPorts: %v, want %v", err, tc.err)
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("CheckPorts: %q, want it to contain %q", err, tc.msg)
			}
		})
	}
}

func TestPortRangeExpand(t *testing.T) {
	addr := netip.MustParseAddr("10.213.33.2")
	got, err := PortRange{Protocol: "udp", HostIP: netip.MustParseAddr("127.0.0.1"),
		HostFirst: 8000, HostLast: 8002, ContainerFirst: 9000, ContainerLast: 9002}.Expand(addr, "bt-nb0")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, m := range got {
		if m.Bridge != "bt-nb0" {
			t.Errorf("%s: bridge %q", m, m.Bridge)
		}
		s = append(s, m.String())
	}
	want := []string{
		"127.0.0.1:8000->10.213.33.2:9000/udp",
		"127.0.0.1:8001->10.213.33.2:9001/udp",
		"127.0.0.1:8002->10.213.33.2:9002/udp",
	}
	if !slices.Equal(s, want) {
		t.Errorf("Expand = %q, want %q", s, want)
	}

	got, err = PortRange{Protocol: "tcp", HostFirst: 65535, HostLast: 65535, ContainerFirst: 80, ContainerLast: 80}.Expand(addr, "b")
	if err != nil || len(got) != 1 || got[0].String() != "65535->10.213.33.2:80/tcp" {
		t.Errorf("single port at the top: %v, %v", got, err)
	}

	for _, tc := range []struct {
		name string
		r    PortRange
		msg  string
	}{
		{"lengths differ", PortRange{Protocol: "tcp", HostFirst: 8000, HostLast: 8009, ContainerFirst: 80, ContainerLast: 80},
			"host range 8000-8009 and container range 80-80 differ in length"},
		{"backwards", PortRange{Protocol: "tcp", HostFirst: 8009, HostLast: 8000, ContainerFirst: 80, ContainerLast: 89}, "8009-8000"},
		{"zero", PortRange{Protocol: "tcp", ContainerFirst: 80, ContainerLast: 80}, "0-0:80-80"},
		{"protocol", PortRange{Protocol: "icmp", HostFirst: 1, HostLast: 1, ContainerFirst: 1, ContainerLast: 1}, `protocol "icmp"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.r.Expand(addr, "b")
			if !errors.Is(err, ErrBadPortMapping) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Expand: %v, want %v containing %q", err, ErrBadPortMapping, tc.msg)
			}
		})
	}
}
