package network

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// The project's table (nat_linux.go) accepts what berth forwards, but an
// accept in one nftables table does not stop a drop in another: where the
// host's iptables filter FORWARD chain drops what it does not know (docker
// sets its policy to DROP when it enables forwarding, ufw does too, and
// docker loads br_netfilter, which sends even the traffic between two ports
// of one bridge through it), every container's packets die there whatever
// berth's table says. So, as podman's netavark does, berth puts accept
// rules for each of its bridges at the head of that chain, and takes them
// away with the bridge:
//
//	-A FORWARD -i B -m comment --comment "berth: out of B" -j ACCEPT
//	-A FORWARD -o B -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "berth: replies to B" -j ACCEPT
//	-A FORWARD -o B -m conntrack --ctstate DNAT -m comment --comment "berth: published ports on B" -j ACCEPT
//
// The first lets the containers out (and, with br_netfilter, talk among
// themselves); the second lets the answers in; the third lets in the
// connections to published ports, which docker accepts port by port and
// berth's own table by "ct status dnat". They open nothing that berth's
// table does not open: its isolation and internal-network drops still
// apply, in their own chain.
//
// The host's chain is iptables', in one of its two back ends, and both are
// looked at:
//   - iptables-nft (Debian's default): table ip filter, chain FORWARD, in
//     nftables. berth writes there through netlink, in the expressions
//     iptables-nft itself writes (meta iifname, the conntrack xt match, the
//     comment as rule userdata), so that `iptables -S FORWARD` still reads
//     the chain and shows the rules as above, and docker or ufw can go on
//     managing it;
//   - iptables-legacy (x_tables, when its filter table is loaded in the
//     namespace): berth runs the iptables-legacy binary (or iptables where
//     that is the legacy one), as netavark does, and says so when neither
//     is installed.
//
// Rules are added only where the chain would drop berth's traffic (policy
// DROP, or a last rule that drops or rejects): a host whose firewall lets
// forwarded traffic through is left untouched. firewalld's own nftables
// table is not handled (netavark speaks to firewalld over D-Bus for that).
//
// Everything acts in the network namespace of the calling thread, as Apply.

// forwardCommentPrefix starts the comment of every rule berth adds to the
// host's FORWARD chain: the rules are found by it and by nothing else.
const forwardCommentPrefix = "berth: "

// forwardRule is one of the three rules of a bridge.
type forwardRule int

const (
	forwardOut forwardRule = iota
	forwardReplies
	forwardPublished
)

var forwardRules = []forwardRule{forwardOut, forwardReplies, forwardPublished}

// comment is what the rule carries for bridge: "berth: out of B".
func (k forwardRule) comment(bridge string) string {
	switch k {
	case forwardOut:
		return forwardCommentPrefix + "out of " + bridge
	case forwardReplies:
		return forwardCommentPrefix + "replies to " + bridge
	}
	return forwardCommentPrefix + "published ports on " + bridge
}

// iptablesArgs is the rule in iptables' words, without the chain.
func (k forwardRule) iptablesArgs(bridge string) []string {
	var args []string
	switch k {
	case forwardOut:
		args = []string{"-i", bridge}
	case forwardReplies:
		args = []string{"-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"}
	case forwardPublished:
		args = []string{"-o", bridge, "-m", "conntrack", "--ctstate", "DNAT"}
	}
	return append(args, "-m", "comment", "--comment", k.comment(bridge), "-j", "ACCEPT")
}

// forwardBridge reads the bridge back from a comment of ours, "" for any
// other comment.
func forwardBridge(comment string) string {
	rest, ok := strings.CutPrefix(comment, forwardCommentPrefix)
	if !ok {
		return ""
	}
	for _, k := range forwardRules {
		if bridge, ok := strings.CutPrefix(rest, strings.TrimPrefix(k.comment(""), forwardCommentPrefix)); ok && bridge != "" {
			return bridge
		}
	}
	return ""
}

// ErrForwardUnmanaged: the host's filter FORWARD chain is iptables-legacy's
// and no legacy iptables binary is installed to read or change it.
var ErrForwardUnmanaged = errors.New("legacy iptables filter table, and no iptables-legacy to manage it")

// EnsureForward adds berth's accept rules for bridge to the head of the
// host's filter FORWARD chain (both iptables back ends) where that chain
// would drop its traffic. Safe to run twice: rules already there are kept,
// and a bridge's partial set is replaced whole. A chain that lets forwarded
// traffic through, or no chain at all, is left alone.
func EnsureForward(bridge string) error {
	if err := linkCheckName(bridge); err != nil {
		return fmt.Errorf("host FORWARD chain: %w", err)
	}
	nftErr := forwardNftEnsure(bridge)
	if nftErr != nil {
		nftErr = fmt.Errorf("host FORWARD chain (iptables-nft) for %s: %w", bridge, nftErr)
	}
	legacyErr := forwardLegacyEnsure(bridge)
	if legacyErr != nil {
		legacyErr = fmt.Errorf("host FORWARD chain (iptables-legacy) for %s: %w", bridge, legacyErr)
	}
	return errors.Join(nftErr, legacyErr)
}

// RemoveForward removes berth's rules for bridge from the host's filter
// FORWARD chains; none there is success, so that `down` always finishes.
// Rules of other bridges, and every rule berth did not add, stay.
func RemoveForward(bridge string) error {
	if err := linkCheckName(bridge); err != nil {
		return fmt.Errorf("host FORWARD chain: %w", err)
	}
	nftErr := forwardNftRemove(bridge)
	if nftErr != nil {
		nftErr = fmt.Errorf("host FORWARD chain (iptables-nft) for %s: %w", bridge, nftErr)
	}
	legacyErr := forwardLegacyRemove(bridge)
	if legacyErr != nil && !errors.Is(legacyErr, ErrForwardUnmanaged) {
		legacyErr = fmt.Errorf("host FORWARD chain (iptables-legacy) for %s: %w", bridge, legacyErr)
	} else {
		legacyErr = nil // with no binary, berth added nothing there
	}
	return errors.Join(nftErr, legacyErr)
}

// ForwardBridges lists the bridges whose names start with prefix that have
// rules of berth's in the host's filter FORWARD chains, sorted: what a
// crash may have left, for tests and cleanup.
func ForwardBridges(prefix string) ([]string, error) {
	var out []string
	rules, _, err := forwardNftRules()
	if err != nil {
		return nil, fmt.Errorf("host FORWARD chain (iptables-nft): %w", err)
	}
	for _, r := range rules {
		if b := forwardBridge(forwardNftComment(r)); b != "" && strings.HasPrefix(b, prefix) {
			out = append(out, b)
		}
	}
	lines, err := forwardLegacyList()
	if err != nil && !errors.Is(err, ErrForwardUnmanaged) {
		return nil, fmt.Errorf("host FORWARD chain (iptables-legacy): %w", err)
	}
	for _, l := range lines {
		if b := forwardBridge(iptablesComment(l)); b != "" && strings.HasPrefix(b, prefix) {
			out = append(out, b)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// The nftables side: iptables-nft's table ip filter, chain FORWARD.

const (
	forwardNftTable = "filter"
	forwardNftChain = "FORWARD"
)

// forwardNftChainOf finds iptables-nft's FORWARD chain; nil when the host
// has none (no table ip filter, or no such base chain in it).
func forwardNftChainOf(c *nftables.Conn) (*nftables.Chain, error) {
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name == forwardNftTable && ch.Name == forwardNftChain &&
			ch.Hooknum != nil && *ch.Hooknum == *nftables.ChainHookForward {
			return ch, nil
		}
	}
	return nil, nil
}

// forwardNftRules returns the chain's rules, with the chain (nil, and no
// rules, when there is none).
func forwardNftRules() ([]*nftables.Rule, *nftables.Chain, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, nil, fmt.Errorf("netlink: %w", err)
	}
	ch, err := forwardNftChainOf(c)
	if err != nil || ch == nil {
		return nil, nil, err
	}
	rules, err := c.GetRules(ch.Table, ch)
	if err != nil {
		return nil, nil, fmt.Errorf("list rules: %w", err)
	}
	return rules, ch, nil
}

// forwardNftComment is a rule's comment, as nft and iptables-nft keep it.
func forwardNftComment(r *nftables.Rule) string {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return s
}

// forwardNftDrops reports whether the chain drops what no rule accepts:
// policy drop, or a last rule whose verdict is drop or reject.
func forwardNftDrops(ch *nftables.Chain, rules []*nftables.Rule) bool {
	if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
		return true
	}
	if len(rules) == 0 {
		return false
	}
	for _, e := range rules[len(rules)-1].Exprs {
		switch e := e.(type) {
		case *expr.Verdict:
			if e.Kind == expr.VerdictDrop {
				return true
			}
		case *expr.Reject:
			return true
		case *expr.Target:
			if e.Name == "REJECT" || e.Name == "DROP" {
				return true
			}
		}
	}
	return false
}

// forwardNftEnsure: see EnsureForward. The rules go in one batch (the
// kernel's transaction): the chain never holds part of a bridge's set.
func forwardNftEnsure(bridge string) error {
	for attempt := 0; ; attempt++ {
		err := forwardNftEnsureOnce(bridge)
		// ENOENT: a rule or the chain went away under us (iptables
		// rewrote the chain, or another berth removed a rule): look again.
		if err == nil || !errors.Is(err, unix.ENOENT) || attempt == 2 {
			return err
		}
	}
}

func forwardNftEnsureOnce(bridge string) error {
	rules, ch, err := forwardNftRules()
	if err != nil || ch == nil {
		return err
	}
	have := map[string]bool{}
	var mine []*nftables.Rule
	for _, r := range rules {
		if forwardBridge(forwardNftComment(r)) == bridge {
			have[forwardNftComment(r)] = true
			mine = append(mine, r)
		}
	}
	if len(have) == len(forwardRules) {
		return nil
	}
	if len(mine) == 0 && !forwardNftDrops(ch, rules) {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	for _, r := range mine {
		if err := c.DelRule(r); err != nil {
			return fmt.Errorf("delete rule: %w", err)
		}
	}
	// Each insert goes to the head of the chain: the last one inserted
	// comes first.
	for i := len(forwardRules) - 1; i >= 0; i-- {
		k := forwardRules[i]
		c.InsertRule(&nftables.Rule{
			Table:    ch.Table,
			Chain:    ch,
			Exprs:    k.nftExprs(bridge),
			UserData: userdata.AppendString(nil, userdata.TypeComment, k.comment(bridge)),
		})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("insert rules: %w", err)
	}
	return nil
}

// forwardNftRemove: see RemoveForward.
func forwardNftRemove(bridge string) error {
	for attempt := 0; ; attempt++ {
		err := forwardNftRemoveOnce(bridge)
		if err == nil || !errors.Is(err, unix.ENOENT) || attempt == 2 {
			return err
		}
	}
}

func forwardNftRemoveOnce(bridge string) error {
	rules, ch, err := forwardNftRules()
	if err != nil || ch == nil {
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	n := 0
	for _, r := range rules {
		if forwardBridge(forwardNftComment(r)) == bridge {
			if err := c.DelRule(r); err != nil {
				return fmt.Errorf("delete rule: %w", err)
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete rules: %w", err)
	}
	return nil
}

// xt_conntrack's state bits (linux/netfilter/xt_conntrack.h): a ctinfo's
// bit is 1 << (ctinfo % IP_CT_IS_REPLY + 1), SNAT and DNAT come after
// IP_CT_NUMBER (5).
const (
	xtCtStateEstablished = 1 << 1
	xtCtStateRelated     = 1 << 2
	xtCtStateDNAT        = 1 << 7
)

// nftExprs is the rule as iptables-nft writes `iptables -A FORWARD …`
// (without its counter), so that iptables-nft reads it back.
func (k forwardRule) nftExprs(bridge string) []expr.Any {
	accept := &expr.Verdict{Kind: expr.VerdictAccept}
	conntrack := func(state uint16) *expr.Match {
		return &expr.Match{Name: "conntrack", Rev: 3, Info: &xt.ConntrackMtinfo3{
			ConntrackMtinfo2: xt.ConntrackMtinfo2{
				ConntrackMtinfoBase: xt.ConntrackMtinfoBase{MatchFlags: uint16(xt.ConntrackState)},
				StateMask:           state,
			},
		}}
	}
	switch k {
	case forwardOut:
		return append(natIfname(expr.MetaKeyIIFNAME, expr.CmpOpEq, bridge), accept)
	case forwardReplies:
		return append(natIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, bridge),
			conntrack(xtCtStateEstablished|xtCtStateRelated), accept)
	}
	return append(natIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, bridge),
		conntrack(xtCtStateDNAT), accept)
}
