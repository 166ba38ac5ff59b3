package seccomp

import (
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// The filter's return values (<linux/seccomp.h> SECCOMP_RET_*); the low 16
// bits are the data of ERRNO and TRACE.
const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000
	retDataMask    = 0x0000ffff

	errnoEPERM  = 1
	errnoENOSYS = 38
)

// retBadArch answers a syscall of an ABI the profile does not list (say
// int 0x80 from a 64-bit program when the profile has no SCMP_ARCH_X86).
// libseccomp's default bad-arch action is SCMP_ACT_KILL, which kills the
// thread only; berth kills the process: such a call is an exploit or a
// broken binary, never a fallback path, and a multi-threaded program that
// silently loses one thread is harder to diagnose than one that dies of
// SIGSYS. Docker (runc, libseccomp) kills the thread.
const retBadArch = retKillProcess

// SECCOMP_FILTER_FLAG_* that Program.Flags can hold.
const (
	flagLog       = 1 << 1
	flagSpecAllow = 1 << 2
)

// maxArgs is the number of syscall arguments in seccomp_data.
const maxArgs = 6

// actionRet is the filter's return value for an action, as runc maps it:
// SCMP_ACT_KILL kills the thread (libseccomp's SCMP_ACT_KILL is
// SCMP_ACT_KILL_THREAD), ERRNO and TRACE carry errnoRet or else EPERM. A
// rule's ERRNO without errnoRet is EPERM, not the profile's defaultErrnoRet,
// which is the default action's only (runtime-spec; runc).
func actionRet(act specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(errnoEPERM)
	if errnoRet != nil {
		// libseccomp's SCMP_ACT_ERRNO(x) keeps the low 16 bits; the kernel
		// caps the errno at 4095 anyway.
		data = uint32(*errnoRet) & retDataMask
	}
	switch act {
	case specs.ActAllow:
		return retAllow, nil
	case specs.ActErrno:
		return retErrno | data, nil
	case specs.ActKill, specs.ActKillThread:
		return retKillThread, nil
	case specs.ActKillProcess:
		return retKillProcess, nil
	case specs.ActTrap:
		return retTrap, nil
	case specs.ActTrace:
		return retTrace | data, nil
	case specs.ActLog:
		return retLog, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("%w: action %s hands syscalls to a seccomp agent, and berth has none", ErrUnsupported, act)
	case "":
		return 0, fmt.Errorf("%w: no action", ErrInvalidProfile)
	}
	return 0, fmt.Errorf("%w: unknown action %q (known: %s)", ErrInvalidProfile, act, knownActions)
}

const knownActions = "SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_TRACE, SCMP_ACT_LOG"

// permissive are the default actions after which runc adds no -ENOSYS
// stub: a new syscall is let through anyway, and a tracer handles it
// itself.
func permissive(act specs.LinuxSeccompAction) bool {
	return act == specs.ActAllow || act == specs.ActLog || act == specs.ActTrace
}

func checkOp(op specs.LinuxSeccompOperator) error {
	switch op {
	case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
		return nil
	}
	return fmt.Errorf("%w: unknown operator %q (known: SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ)", ErrInvalidProfile, op)
}

// filterFlags are the seccomp(2) flags of the profile's "flags", as runc
// reads them: none listed (nil, not []) means SPEC_ALLOW, so that the filter
// does not turn on the speculative store bypass mitigation (a cost docker
// containers do not pay).
func filterFlags(flags []specs.LinuxSeccompFlag) (uint, error) {
	if flags == nil {
		return flagSpecAllow, nil
	}
	var out uint
	for _, f := range flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			out |= flagLog
		case specs.LinuxSeccompFlagSpecAllow:
			out |= flagSpecAllow
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// runc ignores it too: the filter goes on the thread that
			// execs, and the exec ends every other thread.
		case specs.LinuxSeccompFlagWaitKillableRecv:
			// Only changes how a notify listener waits, and the kernel
			// refuses it without one; berth has none.
		default:
			return 0, fmt.Errorf("%w: unknown flag %q (known: SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)", ErrInvalidProfile, f)
		}
	}
	return out, nil
}

// checkSyscall validates one entry of a profile's syscalls.
func checkSyscall(s *specs.LinuxSyscall) error {
	if len(s.Names) == 0 {
		return fmt.Errorf("%w: no syscall names", ErrInvalidProfile)
	}
	for _, n := range s.Names {
		if n == "" {
			return fmt.Errorf("%w: empty syscall name", ErrInvalidProfile)
		}
	}
	if _, err := actionRet(s.Action, s.ErrnoRet); err != nil {
		return err
	}
	for i, a := range s.Args {
		if a.Index >= maxArgs {
			return fmt.Errorf("args[%d]: %w: index %d, syscalls have %d arguments (0-%d)", i, ErrInvalidProfile, a.Index, maxArgs, maxArgs-1)
		}
		if err := checkOp(a.Op); err != nil {
			return fmt.Errorf("args[%d]: %w", i, err)
		}
	}
	return nil
}

// syscallWhere names a profile entry in an error: syscalls[3] (mkdir).
func syscallWhere(i int, names []string) string {
	const maxShown = 3
	shown := names
	if len(shown) > maxShown {
		shown = shown[:maxShown]
	}
	s := strings.Join(shown, ", ")
	if len(names) > maxShown {
		s += ", …"
	}
	return fmt.Sprintf("syscalls[%d] (%s)", i, s)
}

// rule is one entry of the profile's syscalls, checked.
type rule struct {
	names  []string
	rows   []int32 // the rows in syscallTable of the names ABIs have
	action uint32
	// asDefault is a rule whose action is the default one: runc leaves it
	// out of the filter (libseccomp refuses it), but its names still count
	// for the -ENOSYS stub.
	asDefault bool
	// alts are alternatives, each a conjunction of conditions; nil for an
	// unconditional rule. libseccomp cannot compare one argument twice
	// in a rule, so when a rule does, runc adds each of its conditions as
	// a rule of its own: they become alternatives, not a conjunction.
	// Docker's profiles are written for that (moby/profiles, socket rules).
	alts [][]specs.LinuxSeccompArg
}

func checkRules(syscalls []specs.LinuxSyscall, dflt uint32) ([]rule, error) {
	out := make([]rule, len(syscalls))
	names := 0
	for i := range syscalls {
		names += len(syscalls[i].Names)
	}
	rows := make([]int32, 0, names)
	for i := range syscalls {
		s := &syscalls[i]
		if err := checkSyscall(s); err != nil {
			return nil, fmt.Errorf("%s: %w", syscallWhere(i, s.Names), err)
		}
		act, _ := actionRet(s.Action, s.ErrnoRet)
		r := &out[i]
		r.names, r.action, r.asDefault = s.Names, act, act == dflt
		first := len(rows)
		for _, name := range s.Names {
			if row := rowOf(name); row >= 0 {
				rows = append(rows, int32(row))
			}
		}
		r.rows = rows[first:len(rows):len(rows)]
		switch {
		case len(s.Args) == 0:
		case repeatsIndex(s.Args):
			for _, a := range s.Args {
				r.alts = append(r.alts, []specs.LinuxSeccompArg{a})
			}
		default:
			r.alts = [][]specs.LinuxSeccompArg{s.Args}
		}
	}
	return out, nil
}

func repeatsIndex(args []specs.LinuxSeccompArg) bool {
	var seen [maxArgs]bool
	for _, a := range args {
		if seen[a.Index] {
			return true
		}
		seen[a.Index] = true
	}
	return false
}

// entry is what the filter does with one syscall number of one ABI.
type entry struct {
	nr uint32
	// action is every call's when uncond; else the alternatives, a list in
	// section.alts from first to last, are tried in order and the first
	// that holds gives its action.
	action      uint32
	first, last int32
	is32        bool
	uncond      bool
}

type alt struct {
	action uint32
	next   int32 // the entry's next alternative in section.alts, -1: none
	conds  []specs.LinuxSeccompArg
}

// section is what the filter does for the ABIs of one seccomp_data.arch.
type section struct {
	entries []entry // sorted by number
	alts    []alt
	// largest is each ABI's largest syscall number named by the profile
	// (0: none, as runc has it), which the -ENOSYS stub compares with.
	largest map[*abi]uint32
}

// add merges a rule into entry i as libseccomp's database does: the first
// unconditional rule for a syscall decides it, and later rules are dropped;
// an unconditional rule replaces the conditional ones before it.
func (s *section) add(i int, action uint32, conds []specs.LinuxSeccompArg) {
	e := &s.entries[i]
	switch {
	case e.uncond:
	case len(conds) == 0:
		e.uncond, e.action, e.first, e.last = true, action, -1, -1
	default:
		s.alts = append(s.alts, alt{action: action, next: -1, conds: conds})
		n := int32(len(s.alts) - 1)
		if e.last >= 0 {
			s.alts[e.last].next = n
		} else {
			e.first = n
		}
		e.last = n
	}
}

// needed drops what libseccomp drops as always true: a MASKED_EQ whose mask
// has no bits in the words compared (on a 32-bit ABI, the low word only).
// A rule left with no condition is unconditional.
func needed(conds []specs.LinuxSeccompArg, is32 bool) []specs.LinuxSeccompArg {
	always := func(c specs.LinuxSeccompArg) bool {
		mask := c.Value
		if is32 {
			mask &= 0xffffffff
		}
		return c.Op == specs.OpMaskedEqual && mask == 0
	}
	if !slices.ContainsFunc(conds, always) {
		return conds
	}
	return slices.DeleteFunc(slices.Clone(conds), always)
}

// newSection resolves the rules for the ABIs of one section (ordered by
// base, x86_64 before x32, so that their numbers come out sorted). The
// init process that compiles the filter is new, and every page its heap
// first touches costs a page fault, so this allocates once, to size, and
// sorts nothing. slot has room for len(syscallTable)*len(group) items.
func newSection(rules []rule, group []*abi, slot []int32) *section {
	slot = slot[:len(syscallTable)*len(group)]
	clear(slot)
	s := &section{largest: make(map[*abi]uint32, len(group))}
	// slot[row*len(group)+i] is the entry of syscallTable[row] in group[i]:
	// -1 once a rule needs it, then its index+1.
	n, alts := 0, 0
	for _, r := range rules {
		for _, row := range r.rows {
			for i, a := range group {
				nr, ok := a.number(row)
				if !ok {
					continue
				}
				s.largest[a] = max(s.largest[a], nr)
				if r.asDefault {
					continue
				}
				alts += len(r.alts)
				if k := int(row)*len(group) + i; slot[k] == 0 {
					slot[k] = -1
					n++
				}
			}
		}
	}
	s.entries = make([]entry, 0, n)
	s.alts = make([]alt, 0, alts)
	for i, a := range group {
		for _, row := range byNumber[a.table] {
			if k := int(row)*len(group) + i; slot[k] < 0 {
				nr, _ := a.number(int32(row))
				s.entries = append(s.entries, entry{nr: nr, is32: a.is32, first: -1, last: -1})
				slot[k] = int32(len(s.entries))
			}
		}
	}
	for _, r := range rules {
		if r.asDefault {
			continue
		}
		for _, row := range r.rows {
			for i, a := range group {
				k := int(row)*len(group) + i
				if slot[k] <= 0 {
					continue // not in this ABI
				}
				if r.alts == nil {
					s.add(int(slot[k]-1), r.action, nil)
				}
				for _, conds := range r.alts {
					s.add(int(slot[k]-1), r.action, needed(conds, a.is32))
				}
			}
		}
	}
	return s
}
