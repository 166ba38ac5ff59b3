package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// The embedded resolver, as docker's: every container's resolv.conf names
// 127.0.0.11, where its monitor answers the names of the project's networks
// from the leases and forwards the rest to the host's resolvers. The monitor
// is small and there is one per container, so the server is lean: one
// goroutine per socket, a bounded number of forwards and TCP connections in
// flight, buffers sized to a DNS message, not to a packet.

const (
	// DNSResolverIP is the address of the resolver in every container's
	// namespace, as docker's; the container's resolv.conf names it.
	DNSResolverIP = "127.0.0.11"
	// DNSPort is the port it answers on, UDP and TCP.
	DNSPort = 53
	// DefaultDNSTTL is the TTL of the records the server makes, when
	// Server.TTL is zero: docker's 600 s, so that clients that cache (nginx,
	// the JVM) behave as they do under docker compose.
	DefaultDNSTTL = 600
	// DefaultDNSForwardTimeout bounds one try of one upstream, when
	// Server.Timeout is zero: short enough that a second upstream is asked
	// before the client's own 5 s timeout runs out.
	DefaultDNSForwardTimeout = 2 * time.Second
)

const (
	dnsMinUDPSize  = 512  // RFC 1035: the UDP limit without EDNS
	dnsMaxUDPSize  = 1232 // the EDNS payload we accept and advertise (DNS flag day 2020)
	dnsMaxTCPSize  = 65535
	dnsMaxForwards = 32 // forwarded UDP queries in flight per socket; more get SERVFAIL
	dnsMaxTCPConns = 16 // TCP connections served at once per listener; more are closed
	dnsTCPIdle     = 10 * time.Second
)

var errDNSNoUpstreams = errors.New("no upstream resolvers")

// Records answers names for one asking container. It is read on every
// query, so answers follow leases as containers come and go.
type Records interface {
	// Lookup returns the IPv4 addresses for name (no trailing dot,
	// lower-case) visible to the asking container: every lease on the
	// networks it shares whose names contain name. ok=false: not a name of
	// the project's networks, ask the upstreams.
	Lookup(name string) (addrs []netip.Addr, ok bool)
	// Reverse returns the names for addr (PTR of in-addr.arpa), without
	// trailing dots; ok=false: ask the upstreams.
	Reverse(addr netip.Addr) (names []string, ok bool)
}

// Server answers DNS queries for one container. The zero value answers
// nothing itself and has no upstreams: set Records and Upstreams. A Server
// is not changed by serving, so one value serves UDP and TCP at once.
type Server struct {
	// Records answers the project's names; nil forwards everything.
	Records Records
	// Upstreams are the host's resolvers (HostResolvers), asked in turn for
	// names that are not the project's; empty: such names get SERVFAIL.
	Upstreams []netip.AddrPort
	// Forward, if set, replaces asking Upstreams: it gets the client's query
	// as received (its ID included), and "udp" or "tcp" for the transport it
	// came on, and returns the response to send back (an error: SERVFAIL).
	// nil asks each of Upstreams in turn, over the transport the query came
	// on, with sockets of the calling goroutine's namespace: the monitor's,
	// the host's, which is what lets a container reach the host's resolvers
	// even when they listen on the host's loopback (systemd-resolved).
	Forward func(ctx context.Context, network string, query []byte) ([]byte, error)
	// TTL of the records answered from Records; zero: DefaultDNSTTL.
	TTL uint32
	// Timeout of one try of one upstream; zero: DefaultDNSForwardTimeout.
	Timeout time.Duration
}

// dnsQuery is what the server keeps of a query to answer it.
type dnsQuery struct {
	hdr      dnsmessage.Header
	q        dnsmessage.Question
	question bool // q was parsed; echo it
	edns     bool // the query had an OPT record: answer with one
	udpSize  int  // the largest UDP response the client takes
}

// dnsParse reads a query. ok=false: the input deserves no answer at all (no
// header, or a response). Otherwise rcode says whether to refuse it.
func dnsParse(msg []byte) (q dnsQuery, rcode dnsmessage.RCode, ok bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return q, 0, false
	}
	q.hdr, q.udpSize = h, dnsMinUDPSize
	if q.q, err = p.Question(); err != nil {
		return q, dnsmessage.RCodeFormatError, true
	}
	q.question = true
	if _, err := p.Question(); !errors.Is(err, dnsmessage.ErrSectionDone) {
		return q, dnsmessage.RCodeFormatError, true // nobody serves several questions
	}
	if p.SkipAllAnswers() != nil || p.SkipAllAuthorities() != nil {
		return q, dnsmessage.RCodeFormatError, true
	}
	for {
		rh, err := p.AdditionalHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil || p.SkipAdditional() != nil {
			return q, dnsmessage.RCodeFormatError, true
		}
		if rh.Type != dnsmessage.TypeOPT {
			continue
		}
		if q.edns {
			return q, dnsmessage.RCodeFormatError, true // RFC 6891 6.1.1: one OPT at most
		}
		q.edns = true
		q.udpSize = min(max(int(rh.Class), dnsMinUDPSize), dnsMaxUDPSize)
		if version := rh.TTL >> 16 & 0xff; version != 0 {
			return q, dnsRCodeBadVersion, true
		}
	}
	if h.OpCode != 0 {
		return q, dnsmessage.RCodeNotImplemented, true
	}
	return q, dnsmessage.RCodeSuccess, true
}

// dnsRCodeBadVersion is BADVERS (RFC 6891), an extended rcode: its high bits
// go in the OPT record, the header carries the low four.
const dnsRCodeBadVersion dnsmessage.RCode = 16

// dnsAnswer is what Records gave for a query.
type dnsAnswer struct {
	addrs []netip.Addr // A records
	names []string     // PTR records
}

// dnsReply packs the response to q into buf (appending to it). It never
// exceeds limit: a response too big gets the TC bit and no answers, so that
// the client asks again over TCP.
func (s *Server) dnsReply(buf []byte, q *dnsQuery, rcode dnsmessage.RCode, ans *dnsAnswer, limit int) []byte {
	start := len(buf)
	aa := ans != nil // answered from Records: we are the authority
	msg, err := s.dnsPack(buf, q, rcode, ans, aa, false)
	if err == nil && len(msg)-start <= limit {
		return msg
	}
	if err != nil {
		rcode = dnsmessage.RCodeServerFailure // Records gave a name that cannot be packed
	}
	msg, err = s.dnsPack(buf[:start], q, rcode, nil, aa, err == nil)
	if err != nil {
		return nil
	}
	return msg
}

func (s *Server) dnsPack(buf []byte, q *dnsQuery, rcode dnsmessage.RCode, ans *dnsAnswer, aa, truncated bool) ([]byte, error) {
	b := dnsmessage.NewBuilder(buf, dnsmessage.Header{
		ID:                 q.hdr.ID,
		Response:           true,
		OpCode:             q.hdr.OpCode,
		Authoritative:      aa && rcode == dnsmessage.RCodeSuccess,
		Truncated:          truncated,
		RecursionDesired:   q.hdr.RecursionDesired,
		RecursionAvailable: true,
		CheckingDisabled:   q.hdr.CheckingDisabled,
		RCode:              rcode & 0xf,
	})
	if ans != nil && len(ans.addrs)+len(ans.names) > 1 {
		b.EnableCompression() // the owner name once, not once per replica
	}
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if q.question {
		if err := b.Question(q.q); err != nil {
			return nil, err
		}
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if ans != nil {
		ttl := s.TTL
		if ttl == 0 {
			ttl = DefaultDNSTTL
		}
		rh := dnsmessage.ResourceHeader{Name: q.q.Name, Class: dnsmessage.ClassINET, TTL: ttl}
		for _, a := range ans.addrs {
			if err := b.AResource(rh, dnsmessage.AResource{A: a.As4()}); err != nil {
				return nil, err
			}
		}
		for _, n := range ans.names {
			if !strings.HasSuffix(n, ".") {
				n += "."
			}
			name, err := dnsmessage.NewName(n)
			if err != nil {
				return nil, err
			}
			if err := b.PTRResource(rh, dnsmessage.PTRResource{PTR: name}); err != nil {
				return nil, err
			}
		}
	}
	if q.edns {
		if err := b.StartAdditionals(); err != nil {
			return nil, err
		}
		var opt dnsmessage.ResourceHeader
		if err := opt.SetEDNS0(dnsMaxUDPSize, rcode, false); err != nil {
			return nil, err
		}
		if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// dnsHandle answers msg into buf if it can. forward=true: the name is not
// the project's, ask upstream and answer q with what comes back. A nil resp
// without forward: send nothing.
func (s *Server) dnsHandle(buf, msg []byte, udp bool) (resp []byte, q dnsQuery, forward bool) {
	q, rcode, ok := dnsParse(msg)
	if !ok {
		return nil, q, false
	}
	limit := dnsMaxTCPSize
	if udp {
		limit = q.udpSize
	}
	if rcode != dnsmessage.RCodeSuccess {
		return s.dnsReply(buf, &q, rcode, nil, limit), q, false
	}
	ans, ok := s.dnsLookup(&q.q)
	if !ok {
		return nil, q, true
	}
	return s.dnsReply(buf, &q, dnsmessage.RCodeSuccess, &ans, limit), q, false
}

// dnsLookup asks Records. ok=false: not ours, forward.
func (s *Server) dnsLookup(q *dnsmessage.Question) (ans dnsAnswer, ok bool) {
	if s.Records == nil || (q.Class != dnsmessage.ClassINET && q.Class != dnsmessage.ClassANY) {
		return ans, false
	}
	name := dnsCanonical(q.Name)
	if name == "" {
		return ans, false
	}
	if q.Type == dnsmessage.TypePTR {
		if addr, ok := dnsReverseAddr(name); ok {
			ans.names, ok = s.Records.Reverse(addr)
			return ans, ok
		}
	}
	addrs, ok := s.Records.Lookup(name)
	if !ok {
		return ans, false
	}
	// The name is ours: any other type (AAAA above all) is NOERROR with no
	// answer, never NXDOMAIN, or a resolver asking A and AAAA at once would
	// conclude that the name does not exist.
	if q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeALL {
		for _, a := range addrs {
			if a = a.Unmap(); a.Is4() {
				ans.addrs = append(ans.addrs, a)
			}
		}
		// Docker's round robin: a client takes the first address, so shuffle
		// the replicas of a scaled service for each answer.
		rand.Shuffle(len(ans.addrs), func(i, j int) { ans.addrs[i], ans.addrs[j] = ans.addrs[j], ans.addrs[i] })
	}
	return ans, true
}

// dnsCanonical is name in lower case without its trailing dot. Only ASCII
// folds (RFC 4343).
func dnsCanonical(n dnsmessage.Name) string {
	b := n.Data[:n.Length]
	b = b[:len(b)-min(len(b), 1)] // the trailing dot: the parser ends every name with one
	var lower [255]byte
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return string(lower[:len(b)])
}

// dnsReverseAddr reads d.c.b.a.in-addr.arpa.
func dnsReverseAddr(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return netip.Addr{}, false
	}
	var a [4]byte
	for i := 3; i >= 0; i-- {
		label := rest
		if i > 0 {
			if label, rest, ok = strings.Cut(rest, "."); !ok {
				return netip.Addr{}, false
			}
		}
		n, err := strconv.ParseUint(label, 10, 8)
		if err != nil || (len(label) > 1 && label[0] == '0') {
			return netip.Addr{}, false
		}
		a[i] = byte(n)
	}
	return netip.AddrFrom4(a), true
}

// ServeUDP answers queries on conn until ctx ends (then it sets a past read
// deadline on conn) or conn is closed, and returns nil then; any other read
// error is returned. Names of Records are answered in the loop; forwarded
// queries each get a goroutine, at most dnsMaxForwards at once (more get
// SERVFAIL rather than waiting behind a dead upstream). It returns once
// those are done. conn stays open: the caller closes it.
func (s *Server) ServeUDP(ctx context.Context, conn net.PacketConn) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	sem := make(chan struct{}, dnsMaxForwards)
	in := make([]byte, dnsMaxUDPSize)
	out := make([]byte, 0, dnsMinUDPSize)
	for {
		n, peer, err := conn.ReadFrom(in)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("dns: read udp: %w", err)
		}
		resp, q, forward := s.dnsHandle(out[:0], in[:n], true)
		if forward {
			select {
			case sem <- struct{}{}:
				msg := slices.Clone(in[:n])
				wg.Go(func() {
					defer func() { <-sem }()
					if resp := s.dnsForward(ctx, "udp", msg, &q); resp != nil {
						_, _ = conn.WriteTo(resp, peer)
					}
				})
				continue
			default:
				resp = s.dnsReply(out[:0], &q, dnsmessage.RCodeServerFailure, nil, q.udpSize)
			}
		}
		if resp != nil {
			_, _ = conn.WriteTo(resp, peer) // the client is gone, or will ask again
			if cap(resp) <= 4*dnsMaxUDPSize {
				out = resp[:0]
			}
		}
	}
}

// ServeTCP answers queries on ln (RFC 7766: a 2-byte length before each
// message, several queries per connection, answered in order) until ctx
// ends or ln is closed, and returns nil then. When ctx ends it unblocks
// Accept with a past deadline where ln has SetDeadline, and closes ln
// otherwise. At most dnsMaxTCPConns connections are served at once; an idle
// one is closed after dnsTCPIdle. It returns once they are all closed.
func (s *Server) ServeTCP(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
			_ = d.SetDeadline(time.Unix(1, 0))
		} else {
			_ = ln.Close()
		}
	})
	defer stop()

	sem := make(chan struct{}, dnsMaxTCPConns)
	backoff := time.Duration(0)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// EMFILE and friends pass: wait a little, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		select {
		case sem <- struct{}{}:
		default:
			_ = c.Close()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			defer c.Close()
			s.dnsServeConn(ctx, c)
		})
	}
}

// dnsServeConn answers the queries of one TCP connection.
func (s *Server) dnsServeConn(ctx context.Context, c net.Conn) {
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var l [2]byte
	for {
		if ctx.Err() != nil || c.SetDeadline(time.Now().Add(dnsTCPIdle)) != nil {
			return
		}
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		resp, q, forward := s.dnsHandle(nil, msg, false)
		if forward {
			resp = s.dnsForward(ctx, "tcp", msg, &q)
		}
		if resp == nil || len(resp) > dnsMaxTCPSize {
			return // nothing to say to garbage: hang up
		}
		binary.BigEndian.PutUint16(l[:], uint16(len(resp)))
		bufs := net.Buffers{l[:], resp}
		if _, err := bufs.WriteTo(c); err != nil {
			return
		}
	}
}
