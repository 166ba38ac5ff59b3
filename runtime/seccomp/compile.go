package seccomp

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// Offsets in struct seccomp_data (<linux/seccomp.h>). Every ABI berth
// filters is little-endian: an argument's low word comes first.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// leafSize is how many syscalls the binary search over syscall numbers
// leaves to a linear scan, as libseccomp's optimised tree does.
const leafSize = 4

// Program is a compiled filter, ready for Install.
type Program struct {
	// Instructions is the classic BPF program (at most 4096 instructions)
	// that the kernel runs on each syscall's struct seccomp_data.
	Instructions []bpf.RawInstruction
	// Flags are the SECCOMP_FILTER_FLAG_* bits to install it with.
	Flags uint
}

// Compile turns a runtime-spec seccomp profile into a filter for a host of
// goarch ("amd64" or "arm64") with libseccomp's semantics, as runc builds
// and patches it:
//
//   - The filter first checks seccomp_data.arch. Each ABI of the profile's
//     architectures that the host runs gets its own section (the native
//     one always, as libseccomp adds it); any other ABI is killed (see
//     retBadArch). On amd64, x32 shares AUDIT_ARCH_X86_64 with x86_64 and
//     its numbers carry bit 30: with SCMP_ARCH_X32 they are filtered by
//     the x32 table, without it they are a bad architecture (except -1,
//     the number a tracer uses to skip a syscall).
//   - Syscall names resolve per ABI; a name an ABI lacks is skipped.
//   - The rules of one syscall are alternatives; the conditions of a rule
//     must all hold. Arguments compare as unsigned 64-bit values, two
//     32-bit words, or as the low word only on 32-bit ABIs.
//   - As runc does, unless the default action lets syscalls through
//     (ALLOW, LOG, TRACE), a syscall numbered above every syscall the
//     profile names for its ABI gets ENOSYS instead of the default action,
//     so that a libc falls back from a syscall the profile predates (say
//     clone3 to clone) rather than failing with EPERM.
func Compile(cfg *specs.LinuxSeccomp, goarch string) (*Program, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: no profile", ErrInvalidProfile)
	}
	dflt, err := actionRet(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	flags, err := filterFlags(cfg.Flags)
	if err != nil {
		return nil, err
	}
	list, err := abis(goarch, cfg.Architectures)
	if err != nil {
		return nil, err
	}
	rules, err := checkRules(cfg.Syscalls, dflt)
	if err != nil {
		return nil, err
	}

	c := &compiler{b: newBuilder(), dflt: dflt, stub: !permissive(cfg.DefaultAction)}
	groups := byAuditArch(list)
	starts := make([]label, len(groups))
	largest := 0
	for _, g := range groups {
		largest = max(largest, len(g))
	}
	slot := make([]int32, len(syscallTable)*largest)
	for i := len(groups) - 1; i >= 0; i-- {
		starts[i] = c.section(newSection(rules, groups[i], slot), groups[i])
	}
	next := retOf(retBadArch)
	for i := len(groups) - 1; i >= 0; i-- {
		next = at(c.b.jump(opJEQ, groups[i][0].audit, at(starts[i]), next))
	}
	c.b.load(offArch)
	prog, err := c.b.program()
	if err != nil {
		return nil, err
	}
	return &Program{Instructions: prog, Flags: flags}, nil
}

type compiler struct {
	b    *builder
	dflt uint32 // the default action's return value
	stub bool   // whether to add runc's -ENOSYS stub
}

// byAuditArch groups ABIs that share a seccomp_data.arch (x86_64 and x32),
// in the order of their first appearance, each group by base.
func byAuditArch(list []*abi) [][]*abi {
	var groups [][]*abi
	for _, a := range list {
		found := false
		for i, g := range groups {
			if g[0].audit == a.audit {
				groups[i] = append(g, a)
				found = true
			}
		}
		if !found {
			groups = append(groups, []*abi{a})
		}
	}
	for _, g := range groups {
		slices.SortStableFunc(g, func(a, b *abi) int { return cmp.Compare(a.base, b.base) })
	}
	return groups
}

// section places the filter of one seccomp_data.arch and returns its
// first instruction. In program order: load the syscall number, runc's
// -ENOSYS stub, libseccomp's x32 check, a binary search over the syscall
// numbers, then each syscall's rules.
func (c *compiler) section(s *section, group []*abi) label {
	b := c.b
	dflt := retOf(c.dflt)
	start := c.search(s, s.entries, dflt)

	hasX86_64, hasX32 := containsABI(group, abiX86_64), containsABI(group, abiX32)
	switch {
	case hasX86_64 && !hasX32:
		// libseccomp: x32 numbers are another ABI, absent from the filter;
		// -1 goes to the rules (a tracer may set it, seccomp(2)).
		minus1 := b.jump(opJEQ, 0xffffffff, start, retOf(retBadArch))
		start = at(b.jump(opJGE, x32SyscallBit, at(minus1), start))
	case hasX32 && !hasX86_64:
		start = at(b.jump(opJGE, x32SyscallBit, start, retOf(retBadArch)))
	}
	if c.stub {
		start = c.enosysStub(group, s.largest, start)
	}
	b.place(start)
	return b.load(offNr)
}

// enosysStub is runc's patchbpf stub for one section: ENOSYS for a syscall
// numbered above the largest the profile names for its ABI. On
// AUDIT_ARCH_X86_64 it tells x32 from x86_64 by bit 30 (jset), as runc.
func (c *compiler) enosysStub(group []*abi, largest map[*abi]uint32, filter target) target {
	b := c.b
	enosys := retOf(retErrno | errnoENOSYS)
	if group[0].audit != auditArchX86_64 {
		if m := largest[group[0]]; m != 0 {
			return at(b.jump(opJGT, m, enosys, filter))
		}
		return filter
	}
	m64, m32 := largest[abiX86_64], largest[abiX32]
	switch {
	case m64 != 0 && m32 != 0:
		x86_64 := b.jump(opJGT, m64, enosys, filter)
		x32 := b.jump(opJGT, m32, enosys, filter)
		return at(b.jump(opJSET, x32SyscallBit, at(x32), at(x86_64)))
	case m64 != 0:
		x86_64 := b.jump(opJGT, m64, enosys, filter)
		return at(b.jump(opJSET, x32SyscallBit, filter, at(x86_64)))
	case m32 != 0:
		x32 := b.jump(opJGT, m32, enosys, filter)
		return at(b.jump(opJSET, x32SyscallBit, at(x32), filter))
	}
	return filter
}

// search places a binary search for the syscall number in A over list
// (sorted), going to the syscall's rules, or to dflt. Each leaf's rules
// follow the leaf, so that its jumps to them stay short.
func (c *compiler) search(s *section, list []entry, dflt target) target {
	if len(list) <= leafSize {
		var rules [leafSize]target
		for i := len(list) - 1; i >= 0; i-- {
			rules[i] = c.syscall(s, &list[i], dflt)
		}
		next := dflt
		for i := len(list) - 1; i >= 0; i-- {
			next = at(c.b.jump(opJEQ, list[i].nr, rules[i], next))
		}
		return next
	}
	mid := len(list) / 2
	hi := c.search(s, list[mid:], dflt)
	lo := c.search(s, list[:mid], dflt)
	return at(c.b.jump(opJGE, list[mid].nr, hi, lo))
}

// syscall places the rules of one syscall: a return when it has no
// conditions, else each alternative's conditions in order, then the
// default action.
func (c *compiler) syscall(s *section, e *entry, dflt target) target {
	if e.uncond {
		return retOf(e.action)
	}
	// The alternatives are a list; place them last first.
	var order [64]int32
	alts := order[:0]
	for i := e.first; i >= 0; i = s.alts[i].next {
		alts = append(alts, i)
	}
	next := dflt
	for i := len(alts) - 1; i >= 0; i-- {
		a := &s.alts[alts[i]]
		ok := retOf(a.action)
		for j := len(a.conds) - 1; j >= 0; j-- {
			ok = at(c.cond(a.conds[j], ok, next, e.is32))
		}
		next = ok
	}
	return next
}

// cond places one argument comparison, going to yes when it holds and to
// no when not, and returns its first instruction. On a 64-bit ABI the high
// words decide unless equal, then the low words (libseccomp's
// _db_rule_gen_64); on a 32-bit ABI only the low words count.
func (c *compiler) cond(a specs.LinuxSeccompArg, yes, no target, is32 bool) label {
	b := c.b
	offLo := offArgs + 8*uint32(a.Index)
	offHi := offLo + 4
	value := a.Value
	if a.Op == specs.OpMaskedEqual {
		// libseccomp masks the datum too: MASKED_EQ holds when
		// arg&mask == datum&mask.
		value = a.ValueTwo & a.Value
	}
	lo, hi := uint32(value), uint32(value>>32)

	// The low word, placed first since it comes last.
	switch a.Op {
	case specs.OpEqualTo:
		b.jump(opJEQ, lo, yes, no)
	case specs.OpNotEqual:
		b.jump(opJEQ, lo, no, yes)
	case specs.OpGreaterThan:
		b.jump(opJGT, lo, yes, no)
	case specs.OpGreaterEqual:
		b.jump(opJGE, lo, yes, no)
	case specs.OpLessThan:
		b.jump(opJGE, lo, no, yes)
	case specs.OpLessEqual:
		b.jump(opJGT, lo, no, yes)
	case specs.OpMaskedEqual:
		mask := uint32(a.Value)
		if mask == 0 { // always true: only the high word counts
			return c.maskedHigh(a, offHi, hi, yes, no)
		}
		b.jump(opJEQ, lo, yes, no)
		if mask != 0xffffffff {
			b.and(mask)
		}
	}
	low := b.load(offLo)
	if is32 {
		return low
	}

	// The high word.
	switch a.Op {
	case specs.OpEqualTo:
		b.jump(opJEQ, hi, at(low), no)
	case specs.OpNotEqual:
		b.jump(opJEQ, hi, at(low), yes)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		eq := b.jump(opJEQ, hi, at(low), no)
		b.jump(opJGT, hi, yes, at(eq))
	case specs.OpLessThan, specs.OpLessEqual:
		eq := b.jump(opJEQ, hi, at(low), yes)
		b.jump(opJGT, hi, no, at(eq))
	case specs.OpMaskedEqual:
		return c.maskedHigh(a, offHi, hi, at(low), no)
	}
	return b.load(offHi)
}

// maskedHigh places the high-word half of a MASKED_EQ, skipped when the
// mask has no high bits.
func (c *compiler) maskedHigh(a specs.LinuxSeccompArg, offHi, hi uint32, yes, no target) label {
	b := c.b
	mask := uint32(a.Value >> 32)
	if mask == 0 {
		return b.near(yes, 0)
	}
	b.jump(opJEQ, hi, yes, no)
	if mask != 0xffffffff {
		b.and(mask)
	}
	return b.load(offHi)
}
