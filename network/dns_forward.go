package network

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsForward asks upstream for q and returns the response to send: the
// upstream's as it came (same ID, since the query went as it came), a TC
// response where it is bigger than the client takes over UDP, or SERVFAIL.
func (s *Server) dnsForward(ctx context.Context, network string, msg []byte, q *dnsQuery) []byte {
	var resp []byte
	var err error
	if s.Forward != nil {
		resp, err = s.Forward(ctx, network, msg)
	} else {
		resp, err = s.dnsExchange(ctx, network, msg)
	}
	if err != nil || !dnsIsReply(resp, q) {
		return s.dnsReply(nil, q, dnsmessage.RCodeServerFailure, nil, dnsMinUDPSize)
	}
	if network == "udp" && len(resp) > q.udpSize {
		msg, _ := s.dnsPack(nil, q, dnsmessage.RCode(resp[3]&0xf), nil, false, true)
		return msg
	}
	return resp
}

// dnsIsReply tells whether resp answers q: same ID and, when resp has a
// question, the same question.
func dnsIsReply(resp []byte, q *dnsQuery) bool {
	var p dnsmessage.Parser
	h, err := p.Start(resp)
	if err != nil || !h.Response || h.ID != q.hdr.ID {
		return false
	}
	rq, err := p.Question()
	if errors.Is(err, dnsmessage.ErrSectionDone) {
		return true // some servers leave the question out of errors
	}
	return err == nil && rq.Type == q.q.Type && rq.Class == q.q.Class &&
		strings.EqualFold(rq.Name.String(), q.q.Name.String())
}

// dnsExchange asks each upstream in turn. A SERVFAIL or REFUSED moves on to
// the next one, and is the answer if none does better.
func (s *Server) dnsExchange(ctx context.Context, network string, msg []byte) ([]byte, error) {
	if len(s.Upstreams) == 0 {
		return nil, errDNSNoUpstreams
	}
	var last []byte
	var errs []error
	for _, up := range s.Upstreams {
		resp, err := s.dnsAsk(ctx, network, up, msg)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if rc := dnsmessage.RCode(resp[3] & 0xf); rc == dnsmessage.RCodeServerFailure || rc == dnsmessage.RCodeRefused {
			last = resp
			continue
		}
		return resp, nil
	}
	if last != nil {
		return last, nil
	}
	return nil, errors.Join(errs...)
}

// dnsAsk sends msg to one upstream and waits for the response with its ID.
func (s *Server) dnsAsk(ctx context.Context, network string, up netip.AddrPort, msg []byte) ([]byte, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultDNSForwardTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, up.String())
	if err != nil {
		return nil, fmt.Errorf("dns upstream %s: %w", up, err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var resp []byte
	if network == "udp" {
		resp, err = dnsAskUDP(c, msg)
	} else {
		resp, err = dnsAskTCP(c, msg)
	}
	if err != nil {
		return nil, fmt.Errorf("dns upstream %s %s: %w", network, up, err)
	}
	return resp, nil
}

func dnsAskUDP(c net.Conn, msg []byte) ([]byte, error) {
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	// One byte more than any client takes: a response that fills it is
	// answered with TC, whatever its tail was.
	buf := make([]byte, dnsMaxUDPSize+1)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		// The socket is connected: only the upstream reaches it. Skip
		// late answers to an earlier query of the same socket (none) and
		// garbage.
		if n >= 12 && buf[0] == msg[0] && buf[1] == msg[1] && buf[2]&0x80 != 0 {
			return buf[:n], nil
		}
	}
}

func dnsAskTCP(c net.Conn, msg []byte) ([]byte, error) {
	var l [2]byte
	binary.BigEndian.PutUint16(l[:], uint16(len(msg)))
	bufs := net.Buffers{l[:], msg}
	if _, err := bufs.WriteTo(c); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, resp); err != nil {
		return nil, err
	}
	if len(resp) < 12 {
		return nil, errors.New("short response")
	}
	return resp, nil
}

// dnsSystemdResolvConf lists the resolvers systemd-resolved itself uses.
const dnsSystemdResolvConf = "/run/systemd/resolve/resolv.conf"

// HostResolvers reads the nameservers of a resolv.conf (the host's
// /etc/resolv.conf), port 53. As docker does, when it lists only
// systemd-resolved's stub 127.0.0.53, the resolvers of
// /run/systemd/resolve/resolv.conf are returned instead, or the stub if that
// file is missing or empty: the monitor forwards from the host's namespace,
// so loopback resolvers (the stub, a dnsmasq on 127.0.0.1) work as they
// are. A file without nameservers gives an empty list, not an error.
func HostResolvers(path string) ([]netip.AddrPort, error) {
	return dnsHostResolvers(path, dnsSystemdResolvConf)
}

func dnsHostResolvers(path, systemdPath string) ([]netip.AddrPort, error) {
	ns, err := dnsReadResolvConf(path)
	if err != nil {
		return nil, err
	}
	if len(ns) == 1 && ns[0].Addr() == netip.AddrFrom4([4]byte{127, 0, 0, 53}) {
		if resolved, err := dnsReadResolvConf(systemdPath); err == nil && len(resolved) > 0 {
			return resolved, nil
		}
	}
	return ns, nil
}

func dnsReadResolvConf(path string) ([]netip.AddrPort, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("host resolvers: %w", err)
	}
	defer f.Close()
	var ns []netip.AddrPort
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue // comments (# ;), search, options
		}
		addr, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue // as the C library, skip what it cannot read
		}
		ns = append(ns, netip.AddrPortFrom(addr.Unmap(), DNSPort))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("host resolvers: read %s: %w", path, err)
	}
	return ns, nil
}
