package network

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsTestRecords is a fake Records: a name table and its reverse.
type dnsTestRecords struct {
	names map[string][]netip.Addr
	rev   map[netip.Addr][]string
}

var _ Records = dnsTestRecords{}

func (r dnsTestRecords) Lookup(name string) ([]netip.Addr, bool) {
	a, ok := r.names[name]
	return a, ok
}

func (r dnsTestRecords) Reverse(addr netip.Addr) ([]string, bool) {
	n, ok := r.rev[addr]
	return n, ok
}

func dnsTestAddrs(t testing.TB, prefix string, n int) []netip.Addr {
	t.Helper()
	p := netip.MustParsePrefix(prefix)
	a := p.Addr().Next()
	out := make([]netip.Addr, 0, n)
	for range n {
		out = append(out, a)
		a = a.Next()
	}
	return out
}

// dnsTestProject is a project on 10.213.48.0/20: web scaled to two, db, a
// service "big" scaled past what fits in 512 bytes, "huge" past 1232.
func dnsTestProject(t testing.TB) dnsTestRecords {
	t.Helper()
	web := []netip.Addr{netip.MustParseAddr("10.213.48.2"), netip.MustParseAddr("10.213.48.3")}
	return dnsTestRecords{
		names: map[string][]netip.Addr{
			"web":           web,
			"proj-web-1":    web[:1],
			"db":            {netip.MustParseAddr("10.213.48.4")},
			"lonely":        nil,
			"big":           dnsTestAddrs(t, "10.213.49.0/24", 40),
			"huge":          dnsTestAddrs(t, "10.213.50.0/24", 100),
			"v6mapped":      {netip.MustParseAddr("::ffff:10.213.48.9"), netip.MustParseAddr("fd00::1")},
			"some.dotted.x": {netip.MustParseAddr("10.213.48.10")},
		},
		rev: map[netip.Addr][]string{
			netip.MustParseAddr("10.213.48.2"): {"proj-web-1"},
			netip.MustParseAddr("10.213.48.4"): {"proj-db-1.", "db"},
		},
	}
}

// dnsTestQuery packs a recursive query; ednsSize > 0 adds an OPT record.
func dnsTestQuery(t testing.TB, id uint16, name string, typ dnsmessage.Type, ednsSize int) []byte {
	t.Helper()
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}},
	}
	if ednsSize > 0 {
		var opt dnsmessage.ResourceHeader
		if err := opt.SetEDNS0(ednsSize, dnsmessage.RCodeSuccess, false); err != nil {
			t.Fatal(err)
		}
		m.Additionals = []dnsmessage.Resource{{Header: opt, Body: &dnsmessage.OPTResource{}}}
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dnsTestUnpack(t testing.TB, b []byte) dnsmessage.Message {
	t.Helper()
	var m dnsmessage.Message
	if err := m.Unpack(b); err != nil {
		t.Fatalf("unpack response %x: %v", b, err)
	}
	return m
}

// dnsTestA returns the addresses of the A answers of m, sorted.
func dnsTestA(m dnsmessage.Message) []netip.Addr {
	var out []netip.Addr
	for _, r := range m.Answers {
		if a, ok := r.Body.(*dnsmessage.AResource); ok {
			out = append(out, netip.AddrFrom4(a.A))
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func dnsTestOPT(m dnsmessage.Message) (dnsmessage.ResourceHeader, bool) {
	for _, r := range m.Additionals {
		if r.Header.Type == dnsmessage.TypeOPT {
			return r.Header, true
		}
	}
	return dnsmessage.ResourceHeader{}, false
}

// dnsTestHandle runs the handler in memory and wants an answer, not a forward.
func dnsTestHandle(t testing.TB, s *Server, query []byte, udp bool) dnsmessage.Message {
	t.Helper()
	resp, _, forward := s.dnsHandle(nil, query, udp)
	if forward {
		t.Fatal("query forwarded, want an answer from Records")
	}
	if resp == nil {
		t.Fatal("no response")
	}
	return dnsTestUnpack(t, resp)
}

func TestDNSAnswersFromRecords(t *testing.T) {
	s := &Server{Records: dnsTestProject(t)}
	web := []netip.Addr{netip.MustParseAddr("10.213.48.2"), netip.MustParseAddr("10.213.48.3")}
	for _, tc := range []struct {
		name    string
		qname   string
		qtype   dnsmessage.Type
		wantA   []netip.Addr
		wantPTR []string
	}{
		{name: "A of a scaled service", qname: "web", qtype: dnsmessage.TypeA, wantA: web},
		{name: "A, mixed case", qname: "WeB.", qtype: dnsmessage.TypeA, wantA: web},
		{name: "A of a container name", qname: "proj-web-1", qtype: dnsmessage.TypeA, wantA: web[:1]},
		{name: "A of a dotted alias", qname: "Some.Dotted.X", qtype: dnsmessage.TypeA, wantA: []netip.Addr{netip.MustParseAddr("10.213.48.10")}},
		{name: "ANY gives the addresses", qname: "db", qtype: dnsmessage.TypeALL, wantA: []netip.Addr{netip.MustParseAddr("10.213.48.4")}},
		{name: "AAAA of ours: the name exists, no data", qname: "web", qtype: dnsmessage.TypeAAAA},
		{name: "MX of ours: no data", qname: "db", qtype: dnsmessage.TypeMX},
		{name: "a name without leases: no data", qname: "lonely", qtype: dnsmessage.TypeA},
		{name: "only IPv4 in A, v4-mapped unmapped", qname: "v6mapped", qtype: dnsmessage.TypeA, wantA: []netip.Addr{netip.MustParseAddr("10.213.48.9")}},
		{name: "PTR of a container", qname: "2.48.213.10.in-addr.arpa", qtype: dnsmessage.TypePTR, wantPTR: []string{"proj-web-1."}},
		{name: "PTR, upper case, several names", qname: "4.48.213.10.IN-ADDR.ARPA", qtype: dnsmessage.TypePTR, wantPTR: []string{"proj-db-1.", "db."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const id = 0x4b1d
			m := dnsTestHandle(t, s, dnsTestQuery(t, id, tc.qname, tc.qtype, 0), true)
			h := m.Header
			if h.ID != id || !h.Response || !h.Authoritative || !h.RecursionDesired || !h.RecursionAvailable || h.Truncated || h.RCode != dnsmessage.RCodeSuccess {
				t.Fatalf("header %+v, want ID %#x, QR AA RD RA, NOERROR", h, id)
			}
			wantQ := tc.qname
			if !strings.HasSuffix(wantQ, ".") {
				wantQ += "."
			}
			if len(m.Questions) != 1 || m.Questions[0].Name.String() != wantQ || m.Questions[0].Type != tc.qtype {
				t.Fatalf("questions %v, want %s %v echoed as asked", m.Questions, wantQ, tc.qtype)
			}
			if got := dnsTestA(m); !slices.Equal(got, tc.wantA) {
				t.Errorf("A answers %v, want %v", got, tc.wantA)
			}
			var ptr []string
			for _, r := range m.Answers {
				if r.Header.Name.String() != wantQ {
					t.Errorf("answer owner %q, want the name as asked %q", r.Header.Name, wantQ)
				}
				if r.Header.TTL != DefaultDNSTTL {
					t.Errorf("TTL %d, want %d", r.Header.TTL, DefaultDNSTTL)
				}
				if p, ok := r.Body.(*dnsmessage.PTRResource); ok {
					ptr = append(ptr, p.PTR.String())
				}
			}
			if !slices.Equal(ptr, tc.wantPTR) {
				t.Errorf("PTR answers %v, want %v", ptr, tc.wantPTR)
			}
			if len(m.Answers) != len(tc.wantA)+len(tc.wantPTR) {
				t.Errorf("%d answers, want %d", len(m.Answers), len(tc.wantA)+len(tc.wantPTR))
			}
		})
	}
}

func TestDNSTTL(t *testing.T) {
	s := &Server{Records: dnsTestProject(t), TTL: 5}
	m := dnsTestHandle(t, s, dnsTestQuery(t, 1, "db", dnsmessage.TypeA, 0), true)
	if len(m.Answers) != 1 || m.Answers[0].Header.TTL != 5 {
		t.Fatalf("answers %v, want one with TTL 5", m.Answers)
	}
}

func TestDNSShufflesReplicas(t *testing.T) {
	addrs := dnsTestAddrs(t, "10.213.51.0/24", 4)
	recs := dnsTestRecords{names: map[string][]netip.Addr{"web": addrs}}
	s := &Server{Records: recs}
	first := map[netip.Addr]int{}
	for i := range 200 {
		m := dnsTestHandle(t, s, dnsTestQuery(t, uint16(i), "web", dnsmessage.TypeA, 0), true)
		if got := dnsTestA(m); !slices.Equal(got, addrs) {
			t.Fatalf("answer %v, want all of %v", got, addrs)
		}
		first[netip.AddrFrom4(m.Answers[0].Body.(*dnsmessage.AResource).A)]++
	}
	// Each of 4 addresses comes first with p=1/4: all four fail to show
	// in 200 answers with odds below 1e-24.
	if len(first) != len(addrs) {
		t.Errorf("first addresses over 200 answers: %v, want each of %v", first, addrs)
	}
	if !slices.Equal(recs.names["web"], addrs) || !slices.IsSortedFunc(recs.names["web"], netip.Addr.Compare) {
		t.Errorf("the Records' slice was reordered: %v", recs.names["web"])
	}
}

func TestDNSNotOursIsForwarded(t *testing.T) {
	s := &Server{Records: dnsTestProject(t)}
	for _, q := range []struct {
		name string
		typ  dnsmessage.Type
	}{
		{"example.test", dnsmessage.TypeA},
		{"web.example.test", dnsmessage.TypeA}, // the search domain appended: not ours
		{"9.48.213.10.in-addr.arpa", dnsmessage.TypePTR},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", dnsmessage.TypePTR},
		{".", dnsmessage.TypeNS},
	} {
		if resp, _, forward := s.dnsHandle(nil, dnsTestQuery(t, 7, q.name, q.typ, 0), true); !forward || resp != nil {
			t.Errorf("%s %v: forward=%v resp=%x, want forwarded", q.name, q.typ, forward, resp)
		}
	}
	// Other classes (CHAOS version.bind and the like) are not ours either.
	m := dnsmessage.Message{Header: dnsmessage.Header{ID: 8}, Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("web."), Type: dnsmessage.TypeTXT, Class: dnsmessage.ClassCHAOS}}}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, forward := s.dnsHandle(nil, b, true); !forward {
		t.Error("CHAOS query not forwarded")
	}
	// Without Records everything is forwarded.
	if _, _, forward := (&Server{}).dnsHandle(nil, dnsTestQuery(t, 9, "web", dnsmessage.TypeA, 0), true); !forward {
		t.Error("no Records: query not forwarded")
	}
}

func TestDNSMalformed(t *testing.T) {
	s := &Server{Records: dnsTestProject(t)}
	good := dnsTestQuery(t, 0x1234, "web", dnsmessage.TypeA, 0)
	two := func() []byte {
		m := dnsmessage.Message{Header: dnsmessage.Header{ID: 0x1234}, Questions: []dnsmessage.Question{
			{Name: dnsmessage.MustNewName("web."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET},
			{Name: dnsmessage.MustNewName("db."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET},
		}}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	withOPTs := func(versions ...uint32) []byte {
		m := dnsmessage.Message{Header: dnsmessage.Header{ID: 0x1234}, Questions: []dnsmessage.Question{
			{Name: dnsmessage.MustNewName("web."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET},
		}}
		for _, v := range versions {
			var h dnsmessage.ResourceHeader
			if err := h.SetEDNS0(1232, dnsmessage.RCodeSuccess, false); err != nil {
				t.Fatal(err)
			}
			h.TTL |= v << 16
			m.Additionals = append(m.Additionals, dnsmessage.Resource{Header: h, Body: &dnsmessage.OPTResource{}})
		}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	setBits := func(b []byte, i int, bits byte) []byte {
		b = slices.Clone(b)
		b[i] |= bits
		return b
	}
	for _, tc := range []struct {
		name  string
		msg   []byte
		drop  bool
		rcode dnsmessage.RCode // in the header
		ext   dnsmessage.RCode // the extended rcode, from the OPT record
	}{
		{name: "empty", msg: nil, drop: true},
		{name: "shorter than a header", msg: good[:11], drop: true},
		{name: "a response", msg: setBits(good, 2, 0x80), drop: true},
		{name: "no question", msg: good[:12:12], rcode: dnsmessage.RCodeFormatError},
		{name: "question cut short", msg: good[:len(good)-3], rcode: dnsmessage.RCodeFormatError},
		{name: "name with a bad label type", msg: setBits(good, 12, 0x80), rcode: dnsmessage.RCodeFormatError},
		{name: "two questions", msg: two, rcode: dnsmessage.RCodeFormatError},
		{name: "two OPT records", msg: withOPTs(0, 0), rcode: dnsmessage.RCodeFormatError},
		{name: "EDNS version 1", msg: withOPTs(1), rcode: dnsmessage.RCodeSuccess, ext: dnsRCodeBadVersion},
		{name: "opcode STATUS", msg: setBits(good, 2, 2<<3), rcode: dnsmessage.RCodeNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _, forward := s.dnsHandle(nil, tc.msg, true)
			if forward {
				t.Fatal("forwarded")
			}
			if tc.drop {
				if resp != nil {
					t.Fatalf("answered %x, want silence", resp)
				}
				return
			}
			if resp == nil {
				t.Fatal("no answer")
			}
			m := dnsTestUnpack(t, resp)
			if m.Header.ID != 0x1234 || !m.Header.Response || m.Header.RCode != tc.rcode || len(m.Answers) != 0 || m.Header.Authoritative {
				t.Fatalf("header %+v, %d answers; want ID 0x1234, rcode %v, no answer", m.Header, len(m.Answers), tc.rcode)
			}
			if tc.ext != 0 {
				opt, ok := dnsTestOPT(m)
				if !ok || opt.ExtendedRCode(m.Header.RCode) != tc.ext {
					t.Fatalf("OPT %+v (present %v), want extended rcode %v", opt, ok, tc.ext)
				}
			}
		})
	}
}

func TestDNSTruncation(t *testing.T) {
	s := &Server{Records: dnsTestProject(t)}
	for _, tc := range []struct {
		name      string
		qname     string
		edns      int
		udp       bool
		wantTC    bool
		wantCount int
	}{
		{name: "fits in 512", qname: "web", udp: true, wantCount: 2},
		{name: "40 replicas over UDP", qname: "big", udp: true, wantTC: true},
		{name: "40 replicas over UDP with EDNS 4096", qname: "big", edns: 4096, udp: true, wantCount: 40},
		{name: "40 replicas over UDP with EDNS 100: 512 still holds", qname: "big", edns: 100, udp: true, wantTC: true},
		{name: "100 replicas over UDP with EDNS 4096: we take 1232", qname: "huge", edns: 4096, udp: true, wantTC: true},
		{name: "40 replicas over TCP", qname: "big", wantCount: 40},
		{name: "100 replicas over TCP", qname: "huge", wantCount: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _, _ := s.dnsHandle(nil, dnsTestQuery(t, 3, tc.qname, dnsmessage.TypeA, tc.edns), tc.udp)
			limit := 65535
			if tc.udp {
				limit = max(512, min(tc.edns, dnsMaxUDPSize))
			}
			if len(resp) > limit {
				t.Errorf("response of %d bytes, limit %d", len(resp), limit)
			}
			m := dnsTestUnpack(t, resp)
			if m.Header.Truncated != tc.wantTC || len(m.Answers) != tc.wantCount || m.Header.RCode != dnsmessage.RCodeSuccess {
				t.Errorf("TC=%v %d answers %v, want TC=%v %d answers NOERROR", m.Header.Truncated, len(m.Answers), m.Header.RCode, tc.wantTC, tc.wantCount)
			}
			if _, ok := dnsTestOPT(m); ok != (tc.edns > 0) {
				t.Errorf("OPT in response %v, want %v", ok, tc.edns > 0)
			}
		})
	}
}

func TestDNSReverseAddr(t *testing.T) {
	for in, want := range map[string]string{
		"4.3.2.1.in-addr.arpa":       "1.2.3.4",
		"0.0.0.0.in-addr.arpa":       "0.0.0.0",
		"255.48.213.10.in-addr.arpa": "10.213.48.255",
		"3.2.1.in-addr.arpa":         "",
		"5.4.3.2.1.in-addr.arpa":     "",
		"256.3.2.1.in-addr.arpa":     "",
		"04.3.2.1.in-addr.arpa":      "",
		"+4.3.2.1.in-addr.arpa":      "",
		"4..2.1.in-addr.arpa":        "",
		"4.3.2.1.example":            "",
		"in-addr.arpa":               "",
	} {
		a, ok := dnsReverseAddr(in)
		if got := ""; ok {
			got = a.String()
			if got != want {
				t.Errorf("dnsReverseAddr(%q) = %s, want %q", in, got, want)
			}
		} else if want != "" {
			t.Errorf("dnsReverseAddr(%q) failed, want %s", in, want)
		}
	}
}

// dnsTestServe serves s on fresh loopback sockets until the test ends, and
// checks that both loops return nil when stopped.
func dnsTestServe(t testing.TB, s *Server) (udp, tcp string) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { errs <- s.ServeUDP(ctx, pc) }()
	go func() { errs <- s.ServeTCP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
		pc.Close()
		ln.Close()
	})
	return pc.LocalAddr().String(), ln.Addr().String()
}

func dnsTestAskUDP(t testing.TB, addr string, q []byte) dnsmessage.Message {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(q); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096) // more than the server ever sends over UDP
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("udp answer from %s: %v", addr, err)
	}
	return dnsTestUnpack(t, buf[:n])
}

func dnsTestAskTCP(t testing.TB, c net.Conn, q []byte) dnsmessage.Message {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	msg := binary.BigEndian.AppendUint16(nil, uint16(len(q)))
	if _, err := c.Write(append(msg, q...)); err != nil {
		t.Fatal(err)
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		t.Fatalf("tcp answer: %v", err)
	}
	resp := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, resp); err != nil {
		t.Fatalf("tcp answer: %v", err)
	}
	return dnsTestUnpack(t, resp)
}

// dnsTestUpstream is a fake upstream resolver on 127.0.0.1, UDP and TCP on
// one port: answer makes the response to each query; seen records the IDs
// of the queries, in order.
type dnsTestUpstream struct {
	addr netip.AddrPort
	mu   sync.Mutex
	ids  []uint16
}

func (u *dnsTestUpstream) seen() []uint16 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.ids)
}

// dnsTestUpstreamAnswer answers example.test with 10.213.63.7 and anything
// else with NXDOMAIN.
func dnsTestUpstreamAnswer(q dnsmessage.Message) dnsmessage.Message {
	r := dnsmessage.Message{Header: dnsmessage.Header{ID: q.ID, Response: true, RecursionDesired: q.RecursionDesired, RecursionAvailable: true}, Questions: q.Questions}
	if len(q.Questions) == 1 && strings.EqualFold(q.Questions[0].Name.String(), "example.test.") {
		if q.Questions[0].Type == dnsmessage.TypeA {
			r.Answers = []dnsmessage.Resource{{
				Header: dnsmessage.ResourceHeader{Name: q.Questions[0].Name, Class: dnsmessage.ClassINET, TTL: 30},
				Body:   &dnsmessage.AResource{A: [4]byte{10, 213, 63, 7}},
			}}
		}
	} else {
		r.RCode = dnsmessage.RCodeNameError
	}
	return r
}

func dnsTestStartUpstream(t testing.TB, answer func(dnsmessage.Message) dnsmessage.Message) *dnsTestUpstream {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp4", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no free port for UDP and TCP on 127.0.0.1")
	}
	u := &dnsTestUpstream{addr: pc.LocalAddr().(*net.UDPAddr).AddrPort()}
	respond := func(b []byte) []byte {
		var q dnsmessage.Message
		if q.Unpack(b) != nil {
			return nil
		}
		u.mu.Lock()
		u.ids = append(u.ids, q.ID)
		u.mu.Unlock()
		r := answer(q)
		out, err := r.Pack()
		if err != nil {
			return nil
		}
		return out
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, peer, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := respond(buf[:n]); out != nil {
				pc.WriteTo(out, peer)
			}
		}
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				b := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, b); err != nil {
					return
				}
				if out := respond(b); out != nil {
					c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...))
				}
			})
		}
	})
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
		wg.Wait()
	})
	return u
}

// dnsTestDeadUpstream is a port on 127.0.0.1 where nothing listens.
func dnsTestDeadUpstream(t testing.TB) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	return a
}

// dnsTestSilentUpstream reads queries and never answers.
func dnsTestSilentUpstream(t testing.TB) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestDNSForwardsToUpstream(t *testing.T) {
	up := dnsTestStartUpstream(t, dnsTestUpstreamAnswer)
	s := &Server{Records: dnsTestProject(t), Upstreams: []netip.AddrPort{up.addr}}
	udp, tcp := dnsTestServe(t, s)

	m := dnsTestAskUDP(t, udp, dnsTestQuery(t, 0xbeef, "Example.Test", dnsmessage.TypeA, 0))
	if m.ID != 0xbeef || m.RCode != dnsmessage.RCodeSuccess || m.Authoritative {
		t.Fatalf("header %+v, want ID 0xbeef NOERROR, not authoritative", m.Header)
	}
	if got := dnsTestA(m); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("10.213.63.7")}) || m.Answers[0].Header.TTL != 30 {
		t.Fatalf("answers %v, want the upstream's 10.213.63.7 with its TTL 30", m.Answers)
	}
	if ids := up.seen(); !slices.Equal(ids, []uint16{0xbeef}) {
		t.Fatalf("upstream saw IDs %x, want the client's beef", ids)
	}

	m = dnsTestAskUDP(t, udp, dnsTestQuery(t, 0xf00d, "nope.test", dnsmessage.TypeA, 0))
	if m.ID != 0xf00d || m.RCode != dnsmessage.RCodeNameError {
		t.Fatalf("header %+v, want the upstream's NXDOMAIN under ID 0xf00d", m.Header)
	}

	c, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Several queries on one connection, ours and forwarded, over TCP
	// forwarded over TCP.
	for i, q := range []string{"example.test", "web", "example.test"} {
		m := dnsTestAskTCP(t, c, dnsTestQuery(t, uint16(0x100+i), q, dnsmessage.TypeA, 0))
		if m.ID != uint16(0x100+i) || m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) == 0 {
			t.Fatalf("tcp %s: %+v %v", q, m.Header, m.Answers)
		}
	}
	if ids := up.seen(); !slices.Equal(ids, []uint16{0xbeef, 0xf00d, 0x100, 0x102}) {
		t.Fatalf("upstream saw IDs %x", ids)
	}
}

func TestDNSUpstreamFailover(t *testing.T) {
	good := dnsTestStartUpstream(t, dnsTestUpstreamAnswer)
	failing := dnsTestStartUpstream(t, func(q dnsmessage.Message) dnsmessage.Message {
		return dnsmessage.Message{Header: dnsmessage.Header{ID: q.ID, Response: true, RCode: dnsmessage.RCodeServerFailure}, Questions: q.Questions}
	})
	liar := dnsTestStartUpstream(t, func(q dnsmessage.Message) dnsmessage.Message {
		r := dnsTestUpstreamAnswer(q)
		r.ID++ // an answer to another query: ignored, then the try times out
		return r
	})
	dead, silent := dnsTestDeadUpstream(t), dnsTestSilentUpstream(t)
	q := dnsTestQuery(t, 0xabcd, "example.test", dnsmessage.TypeA, 0)
	for _, tc := range []struct {
		name      string
		upstreams []netip.AddrPort
		want      dnsmessage.RCode
	}{
		{"dead, silent, wrong ID, SERVFAIL, then good", []netip.AddrPort{dead, silent, liar.addr, failing.addr, good.addr}, dnsmessage.RCodeSuccess},
		{"only dead", []netip.AddrPort{dead}, dnsmessage.RCodeServerFailure},
		{"only silent", []netip.AddrPort{silent}, dnsmessage.RCodeServerFailure},
		{"only SERVFAIL", []netip.AddrPort{failing.addr}, dnsmessage.RCodeServerFailure},
		{"none", nil, dnsmessage.RCodeServerFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Records: dnsTestProject(t), Upstreams: tc.upstreams, Timeout: 200 * time.Millisecond}
			udp, _ := dnsTestServe(t, s)
			m := dnsTestAskUDP(t, udp, q)
			if m.ID != 0xabcd || m.RCode != tc.want {
				t.Fatalf("header %+v, want ID 0xabcd %v", m.Header, tc.want)
			}
			if len(m.Questions) != 1 || m.Questions[0].Name.String() != "example.test." {
				t.Fatalf("questions %v, want the query's", m.Questions)
			}
			if tc.want == dnsmessage.RCodeSuccess && len(dnsTestA(m)) != 1 {
				t.Fatalf("answers %v", m.Answers)
			}
		})
	}
}

func TestDNSForwardedTruncation(t *testing.T) {
	// An upstream that ignores the client's 512 bytes: the client must get
	// TC, not a datagram it cannot take.
	var calls []string
	var mu sync.Mutex
	s := &Server{Forward: func(ctx context.Context, network string, query []byte) ([]byte, error) {
		mu.Lock()
		calls = append(calls, network)
		mu.Unlock()
		var q dnsmessage.Message
		if err := q.Unpack(query); err != nil {
			return nil, err
		}
		r := dnsmessage.Message{Header: dnsmessage.Header{ID: q.ID, Response: true}, Questions: q.Questions}
		for i := range 60 {
			r.Answers = append(r.Answers, dnsmessage.Resource{
				Header: dnsmessage.ResourceHeader{Name: q.Questions[0].Name, Class: dnsmessage.ClassINET, TTL: 30},
				Body:   &dnsmessage.AResource{A: [4]byte{10, 213, 62, byte(i)}},
			})
		}
		return r.Pack()
	}}
	udp, tcp := dnsTestServe(t, s)
	q := dnsTestQuery(t, 0x5150, "many.example.test", dnsmessage.TypeA, 0)
	m := dnsTestAskUDP(t, udp, q)
	if m.ID != 0x5150 || !m.Truncated || len(m.Answers) != 0 || m.RCode != dnsmessage.RCodeSuccess {
		t.Fatalf("udp: header %+v, %d answers; want TC and none", m.Header, len(m.Answers))
	}
	c, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m = dnsTestAskTCP(t, c, q)
	if m.ID != 0x5150 || m.Truncated || len(m.Answers) != 60 {
		t.Fatalf("tcp: header %+v, %d answers; want all 60", m.Header, len(m.Answers))
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(calls, []string{"udp", "tcp"}) {
		t.Errorf("Forward called over %v, want udp then tcp", calls)
	}
}

func TestDNSTruncationOverSockets(t *testing.T) {
	udp, tcp := dnsTestServe(t, &Server{Records: dnsTestProject(t)})
	q := dnsTestQuery(t, 0x77, "huge", dnsmessage.TypeA, 0)
	if m := dnsTestAskUDP(t, udp, q); !m.Truncated || len(m.Answers) != 0 {
		t.Fatalf("udp: %+v, %d answers; want TC", m.Header, len(m.Answers))
	}
	c, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m := dnsTestAskTCP(t, c, q); m.Truncated || len(m.Answers) != 100 {
		t.Fatalf("tcp: %+v, %d answers; want 100", m.Header, len(m.Answers))
	}
}

func TestDNSSlowUpstreamBlocksNoOne(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	s := &Server{
		Records: dnsTestProject(t),
		Forward: func(ctx context.Context, network string, query []byte) ([]byte, error) {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, errors.New("released")
		},
	}
	udp, _ := dnsTestServe(t, s)
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(dnsTestQuery(t, 1, "example.test", dnsmessage.TypeA, 0)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the query was not forwarded")
	}
	// While the forward hangs, the project's names still answer.
	if m := dnsTestAskUDP(t, udp, dnsTestQuery(t, 2, "web", dnsmessage.TypeA, 0)); len(m.Answers) != 2 {
		t.Fatalf("web while a forward hangs: %+v", m)
	}
	close(release)
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if m := dnsTestUnpack(t, buf[:n]); m.ID != 1 || m.RCode != dnsmessage.RCodeServerFailure {
		t.Fatalf("failed forward: %+v, want SERVFAIL", m.Header)
	}
}

func TestDNSServeStops(t *testing.T) {
	forwarding := make(chan struct{})
	s := &Server{Forward: func(ctx context.Context, network string, query []byte) ([]byte, error) {
		close(forwarding)
		<-ctx.Done() // a forward in flight when the server stops
		return nil, ctx.Err()
	}}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- s.ServeUDP(ctx, pc) }()
	go func() { errs <- s.ServeTCP(ctx, ln) }()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(dnsTestQuery(t, 1, "example.test", dnsmessage.TypeA, 0)); err != nil {
		t.Fatal(err)
	}
	idle, err := net.Dial("tcp", ln.Addr().String()) // an open TCP connection
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	<-forwarding
	cancel()
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("serve returned %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("serve did not return after cancel")
		}
	}

	// A closed socket ends the loop too.
	pc2, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { errs <- s.ServeUDP(context.Background(), pc2) }()
	pc2.Close()
	select {
	case err := <-errs:
		if err != nil {
			t.Errorf("ServeUDP on a closed conn returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeUDP did not return after close")
	}
}

func TestHostResolvers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stub := write("stub", "# systemd-resolved\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n")
	resolved := write("resolved", "nameserver 10.213.63.1\nnameserver fe80::1%eth0\n")
	empty := write("empty", "search lan\n")
	plain := write("plain", "; comment\n#nameserver 10.213.63.9\nnameserver 10.213.63.2\n  nameserver\t::ffff:10.213.63.3  \nnameserver bogus\nnameserver 127.0.0.1\n")
	missing := filepath.Join(dir, "missing")
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name, path, systemd string
		want                []netip.AddrPort
	}{
		{"plain file, loopback kept", plain, resolved, []netip.AddrPort{ap("10.213.63.2:53"), ap("10.213.63.3:53"), ap("127.0.0.1:53")}},
		{"stub only: systemd's list", stub, resolved, []netip.AddrPort{ap("10.213.63.1:53"), ap("[fe80::1%eth0]:53")}},
		{"stub only, systemd's list missing: the stub", stub, missing, []netip.AddrPort{ap("127.0.0.53:53")}},
		{"stub only, systemd's list empty: the stub", stub, empty, []netip.AddrPort{ap("127.0.0.53:53")}},
		{"no nameserver", empty, resolved, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dnsHostResolvers(tc.path, tc.systemd)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := HostResolvers(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v, want ErrNotExist naming the path", err)
	}
}

func BenchmarkDNSQuery(b *testing.B) {
	s := &Server{Records: dnsTestProject(b)}
	q := dnsTestQuery(b, 1, "web", dnsmessage.TypeA, 0)
	out := make([]byte, 0, dnsMinUDPSize)
	b.ReportAllocs()
	for b.Loop() {
		resp, _, forward := s.dnsHandle(out[:0], q, true)
		if forward || len(resp) == 0 {
			b.Fatal("no answer")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

// TestDNSIdleMemory logs what a served, idle Server costs a monitor: the
// heap allocated by its setup and a first query over UDP and TCP, the heap
// it still holds after a GC, and its goroutines (each has a stack of 8 KiB
// at least). It fails only if the idle server holds more than a generous
// bound, to catch a buffer grown by orders of magnitude.
func TestDNSIdleMemory(t *testing.T) {
	recs := dnsTestProject(t)
	q := dnsTestQuery(t, 1, "web", dnsmessage.TypeA, 0)
	// The net package's one-time setup (it reads somaxconn with a 64 KiB
	// buffer on the first Listen) is the process's, not the server's.
	if ln, err := net.Listen("tcp4", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC() // and what the finalizers of the first freed
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	s := &Server{Records: recs} // no upstream: only the project's names are asked
	udp, tcp := dnsTestServe(t, s)
	dnsTestAskUDP(t, udp, q)
	c, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	dnsTestAskTCP(t, c, q)
	c.Close()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("idle DNS server, UDP and TCP (with the test's sockets and client): %d B allocated by setup and two queries, %d B heap held after GC, %d goroutines",
		allocated, held, runtime.NumGoroutine()-goroutines)
	if held > 256<<10 {
		t.Errorf("an idle server holds %d B of heap, want far less than 256 KiB", held)
	}
}
