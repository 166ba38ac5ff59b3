package seccomp

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func uintp(v uint) *uint { return &v }

// profile is a runtime-spec profile denying with EPERM by default, for
// amd64 with i386.
func profile(syscalls ...specs.LinuxSyscall) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Syscalls:      syscalls,
	}
}

func compileVM(t *testing.T, cfg *specs.LinuxSeccomp) *filterVM {
	t.Helper()
	p, err := Compile(cfg, "amd64")
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return newFilterVM(t, p)
}

func TestArgumentOperators(t *testing.T) {
	const v = 0x1_0000_0005
	for _, c := range []struct {
		op           specs.LinuxSeccompOperator
		value, two   uint64
		arg          uint64
		want, want32 bool // on x86_64 (64-bit) and on i386 (low word only)
	}{
		{specs.OpEqualTo, v, 0, 0x1_0000_0005, true, true},
		{specs.OpEqualTo, v, 0, 0x0_0000_0005, false, true},
		{specs.OpEqualTo, v, 0, 0x2_0000_0005, false, true},
		{specs.OpEqualTo, v, 0, 0x1_0000_0004, false, false},
		{specs.OpNotEqual, v, 0, 0x1_0000_0005, false, false},
		{specs.OpNotEqual, v, 0, 0x0_0000_0005, true, false},
		{specs.OpNotEqual, v, 0, 0x2_0000_0005, true, false},
		{specs.OpNotEqual, v, 0, 0x1_0000_0006, true, true},
		{specs.OpGreaterThan, v, 0, 0x2_0000_0004, true, false},
		{specs.OpGreaterThan, v, 0, 0x2_0000_0005, true, false},
		{specs.OpGreaterThan, v, 0, 0x1_0000_0006, true, true},
		{specs.OpGreaterThan, v, 0, 0x1_0000_0005, false, false},
		{specs.OpGreaterThan, v, 0, 0x0_0000_0006, false, true},
		{specs.OpGreaterEqual, v, 0, 0x1_0000_0005, true, true},
		{specs.OpGreaterEqual, v, 0, 0x2_0000_0004, true, false},
		{specs.OpGreaterEqual, v, 0, 0x0_0000_0006, false, true},
		{specs.OpGreaterEqual, v, 0, 0x1_0000_0004, false, false},
		{specs.OpLessThan, v, 0, 0x0_0000_0006, true, false},
		{specs.OpLessThan, v, 0, 0x1_0000_0004, true, true},
		{specs.OpLessThan, v, 0, 0x1_0000_0005, false, false},
		{specs.OpLessThan, v, 0, 0x2_0000_0004, false, true},
		{specs.OpLessEqual, v, 0, 0x1_0000_0005, true, true},
		{specs.OpLessEqual, v, 0, 0x0_0000_0006, true, false},
		{specs.OpLessEqual, v, 0, 0x2_0000_0004, false, true},
		{specs.OpLessEqual, v, 0, 0x1_0000_0006, false, false},
		// MASKED_EQ: Value is the mask, ValueTwo the datum.
		{specs.OpMaskedEqual, 0x1_0000_00f0, 0x1_0000_0050, 0x1_0000_0055, true, true},
		{specs.OpMaskedEqual, 0x1_0000_00f0, 0x1_0000_0050, 0x0_0000_0055, false, true},
		{specs.OpMaskedEqual, 0x1_0000_00f0, 0x1_0000_0050, 0x3_0000_0050, true, true},
		{specs.OpMaskedEqual, 0x1_0000_00f0, 0x1_0000_0050, 0x1_0000_0065, false, false},
		// libseccomp masks the datum as well.
		{specs.OpMaskedEqual, 0xf0, 0x1f5, 0xf3, true, true},
		// A mask with high bits only: always true on i386.
		{specs.OpMaskedEqual, 0x1_0000_0000, 0, 0x1_0000_0000, false, true},
		{specs.OpMaskedEqual, 0x1_0000_0000, 0, 0xffff_ffff, true, true},
	} {
		cfg := profile(specs.LinuxSyscall{
			Names:  []string{"read"},
			Action: specs.ActAllow,
			Args:   []specs.LinuxSeccompArg{{Index: 2, Value: c.value, ValueTwo: c.two, Op: c.op}},
		})
		vm := compileVM(t, cfg)
		for _, a := range []struct {
			abi  *abi
			want bool
		}{{abiX86_64, c.want}, {abiX86, c.want32}} {
			got := vm.run(a.abi.audit, nr(t, a.abi, "read"), 0, 0, c.arg)
			want := uint32(eperm)
			if a.want {
				want = allow
			}
			if got != want {
				t.Errorf("%s: %#x %s %#x (%#x): got %s, want %s", a.abi.scmp, c.arg, c.op, c.value, c.two, retName(got), retName(want))
			}
		}
	}
}

// A profile with a rule with conditions for every x86_64 syscall needs
// jumps farther than a conditional jump reaches.
func TestLargeProfile(t *testing.T) {
	var names []string
	for _, row := range syscallTable {
		if row.nr[tableX86_64] >= 0 {
			names = append(names, row.name)
		}
	}
	if len(names) < 350 {
		t.Fatalf("only %d x86_64 syscalls", len(names))
	}
	cfg := profile()
	cfg.Architectures = nil
	for i, name := range names {
		cfg.Syscalls = append(cfg.Syscalls, specs.LinuxSyscall{
			Names: []string{name}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: uint64(i)<<32 | uint64(i), Op: specs.OpEqualTo}},
		})
		if i%4 == 0 {
			cfg.Syscalls = append(cfg.Syscalls, specs.LinuxSyscall{
				Names: []string{name}, Action: specs.ActTrace, ErrnoRet: uintp(uint(i)),
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: uint64(i), Op: specs.OpGreaterThan}},
			})
		}
	}
	p, err := Compile(cfg, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	longJumps := 0
	for _, ins := range p.Instructions {
		if ins.Op == opJA {
			longJumps++
		}
	}
	t.Logf("%d syscalls: %d instructions, %d long jumps", len(names), len(p.Instructions), longJumps)
	if longJumps == 0 {
		t.Fatal("no long jump: the test does not test them")
	}
	vm := newFilterVM(t, p)
	for i, name := range names {
		n := nr(t, abiX86_64, name)
		self := uint64(i)<<32 | uint64(i)
		if got := vm.run(auditArchX86_64, n, self); got != allow {
			t.Errorf("%s(%#x): got %s, want ALLOW", name, self, retName(got))
		}
		if got := vm.run(auditArchX86_64, n, self+1); got != eperm {
			t.Errorf("%s(%#x): got %s, want ERRNO(EPERM)", name, self+1, retName(got))
		}
		if got := vm.run(auditArchX86_64, n, self+1<<32); got != eperm {
			t.Errorf("%s(%#x): got %s, want ERRNO(EPERM)", name, self+1<<32, retName(got))
		}
		want := uint32(eperm)
		if i%4 == 0 {
			want = retTrace | uint32(i)
		}
		if got := vm.run(auditArchX86_64, n, 1<<40, uint64(i)+1); got != want {
			t.Errorf("%s(1<<40, %d): got %s, want %s", name, i+1, retName(got), retName(want))
		}
	}

	// Six 64-bit comparisons per syscall do not fit in 4096 instructions.
	for i := range cfg.Syscalls {
		for a := uint(1); a < maxArgs; a++ {
			cfg.Syscalls[i].Args = append(cfg.Syscalls[i].Args, specs.LinuxSeccompArg{Index: a, Value: 1, Op: specs.OpLessThan})
		}
	}
	if _, err := Compile(cfg, "amd64"); !errors.Is(err, ErrInvalidProfile) || !strings.Contains(err.Error(), "4096") {
		t.Errorf("a profile over the kernel's limit: got %v, want the 4096 instructions limit", err)
	}
}

// Several rules for one syscall combine as in libseccomp's database and
// runc's translation.
func TestRuleCombination(t *testing.T) {
	allowIf := func(args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActAllow, Args: args}
	}
	errnoIf := func(errno uint, args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: uintp(errno), Args: args}
	}
	arg := func(i uint, op specs.LinuxSeccompOperator, v uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Op: op, Value: v}
	}
	for _, c := range []struct {
		what  string
		rules []specs.LinuxSyscall
		args  []uint64
		want  uint32
	}{
		{"conditions of a rule all hold", []specs.LinuxSyscall{allowIf(arg(0, specs.OpEqualTo, 1), arg(1, specs.OpEqualTo, 2))}, []uint64{1, 2}, allow},
		{"conditions of a rule: one fails", []specs.LinuxSyscall{allowIf(arg(0, specs.OpEqualTo, 1), arg(1, specs.OpEqualTo, 2))}, []uint64{1, 3}, eperm},
		{"rules are alternatives", []specs.LinuxSyscall{allowIf(arg(0, specs.OpEqualTo, 1)), allowIf(arg(0, specs.OpEqualTo, 7))}, []uint64{7}, allow},
		{"the first rule that holds decides", []specs.LinuxSyscall{errnoIf(5, arg(0, specs.OpEqualTo, 1)), allowIf(arg(0, specs.OpLessThan, 10))}, []uint64{1}, retErrno | 5},
		{"a later rule holds", []specs.LinuxSyscall{errnoIf(5, arg(0, specs.OpEqualTo, 1)), allowIf(arg(0, specs.OpLessThan, 10))}, []uint64{2}, allow},
		{"an unconditional rule beats conditional ones before it", []specs.LinuxSyscall{allowIf(arg(0, specs.OpEqualTo, 1)), errnoIf(5)}, []uint64{1}, retErrno | 5},
		{"an unconditional rule beats conditional ones after it", []specs.LinuxSyscall{errnoIf(5), allowIf(arg(0, specs.OpEqualTo, 1))}, []uint64{1}, retErrno | 5},
		{"the first unconditional rule wins", []specs.LinuxSyscall{allowIf(), errnoIf(5)}, nil, allow},
		{"a rule with the default action is left out", []specs.LinuxSyscall{errnoIf(1, arg(0, specs.OpEqualTo, 1)), allowIf(arg(0, specs.OpLessThan, 10))}, []uint64{1}, allow},
		{"one argument twice: alternatives (runc)", []specs.LinuxSyscall{allowIf(arg(0, specs.OpGreaterEqual, 10), arg(0, specs.OpLessEqual, 20))}, []uint64{100}, allow},
		{"a MASKED_EQ without mask bits is no condition", []specs.LinuxSyscall{errnoIf(5, specs.LinuxSeccompArg{Index: 0, Op: specs.OpMaskedEqual}), allowIf()}, []uint64{3}, retErrno | 5},
		{"a name the ABI lacks is skipped", []specs.LinuxSyscall{{Names: []string{"no_such_syscall", "read"}, Action: specs.ActAllow}}, nil, allow},
	} {
		vm := compileVM(t, profile(c.rules...))
		if got := vm.run(auditArchX86_64, 0, c.args...); got != c.want {
			t.Errorf("%s: got %s, want %s", c.what, retName(got), retName(c.want))
		}
	}
}

func TestActions(t *testing.T) {
	for _, c := range []struct {
		act      specs.LinuxSeccompAction
		errnoRet *uint
		want     uint32
	}{
		{specs.ActAllow, nil, retAllow},
		{specs.ActErrno, uintp(13), retErrno | 13},
		// A rule's ERRNO without errnoRet is EPERM, not defaultErrnoRet.
		{specs.ActErrno, nil, retErrno | errnoEPERM},
		{specs.ActKill, nil, retKillThread},
		{specs.ActKillThread, nil, retKillThread},
		{specs.ActKillProcess, nil, retKillProcess},
		{specs.ActTrap, nil, retTrap},
		{specs.ActTrace, uintp(7), retTrace | 7},
		{specs.ActTrace, nil, retTrace | errnoEPERM},
		{specs.ActLog, nil, retLog},
	} {
		cfg := profile(specs.LinuxSyscall{Names: []string{"getpid"}, Action: c.act, ErrnoRet: c.errnoRet})
		cfg.DefaultErrnoRet = uintp(99)
		vm := compileVM(t, cfg)
		if got := vm.run(auditArchX86_64, nr(t, abiX86_64, "getpid")); got != c.want {
			t.Errorf("%s: got %s, want %s", c.act, retName(got), retName(c.want))
		}
		if got := vm.run(auditArchX86_64, nr(t, abiX86_64, "read")); got != retErrno|99 {
			t.Errorf("%s: the default action gave %s, want ERRNO(99)", c.act, retName(got))
		}
	}
}

// runc's -ENOSYS stub: only after a default action that denies, and per
// ABI above the largest syscall the profile names there.
func TestEnosysStub(t *testing.T) {
	getpid := specs.LinuxSyscall{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: uintp(5)}
	for _, c := range []struct {
		dflt specs.LinuxSeccompAction
		want uint32 // for syscall 1000
	}{
		{specs.ActErrno, enosys},
		{specs.ActKill, enosys},
		{specs.ActKillProcess, enosys},
		{specs.ActTrap, enosys},
		{specs.ActAllow, allow},
		{specs.ActLog, retLog},
		{specs.ActTrace, retTrace | errnoEPERM},
	} {
		cfg := profile(getpid)
		cfg.DefaultAction = c.dflt
		vm := compileVM(t, cfg)
		if got := vm.run(auditArchX86_64, 1000); got != c.want {
			t.Errorf("default %s: syscall 1000 got %s, want %s", c.dflt, retName(got), retName(c.want))
		}
		// getpid is 39 on x86_64; anything above it is newer.
		if got := vm.run(auditArchX86_64, 40); c.want == enosys && got != enosys {
			t.Errorf("default %s: syscall 40 got %s, want ERRNO(ENOSYS)", c.dflt, retName(got))
		}
	}

	// A profile naming only syscall 0 has no stub, as runc (it takes 0 for
	// "no syscall found").
	vm := compileVM(t, profile(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActAllow}))
	if got := vm.run(auditArchX86_64, 1000); got != eperm {
		t.Errorf("profile of read only: syscall 1000 got %s, want ERRNO(EPERM)", retName(got))
	}
}

// Without SCMP_ARCH_X32, x32 numbers are a bad architecture (libseccomp).
func TestX32(t *testing.T) {
	read := specs.LinuxSyscall{Names: []string{"read", "getpid"}, Action: specs.ActAllow}
	for _, c := range []struct {
		arches   []specs.Arch
		nr, arch uint32
		want     uint32
	}{
		{nil, x32SyscallBit, auditArchX86_64, killProcess},
		{nil, 0xffffffff, auditArchX86_64, eperm}, // -1: a tracer skipping the syscall
		{nil, 0, auditArchX86_64, allow},
		{nil, 3, auditArchI386, killProcess},
		{[]specs.Arch{specs.ArchX86_64}, x32SyscallBit, auditArchX86_64, killProcess},
		{[]specs.Arch{specs.ArchX86_64, specs.ArchX32}, x32SyscallBit, auditArchX86_64, allow},
		{[]specs.Arch{specs.ArchX86_64, specs.ArchX32}, x32SyscallBit | 5000, auditArchX86_64, enosys},
		// Only x32 listed: x86_64 is native, libseccomp adds it anyway.
		{[]specs.Arch{specs.ArchX32}, 0, auditArchX86_64, allow},
		{[]specs.Arch{specs.ArchX32}, x32SyscallBit, auditArchX86_64, allow},
		// An architecture the host cannot run is accepted and unused.
		{[]specs.Arch{specs.ArchPPC64LE}, 0, auditArchPPC64LE, killProcess},
	} {
		cfg := profile(read)
		cfg.Architectures = c.arches
		vm := compileVM(t, cfg)
		if got := vm.run(c.arch, c.nr); got != c.want {
			t.Errorf("architectures %v: syscall %#x of %#x: got %s, want %s", c.arches, c.nr, c.arch, retName(got), retName(c.want))
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		what string
		edit func(*specs.LinuxSeccomp)
		is   error
		msg  string
	}{
		{"unknown default", func(p *specs.LinuxSeccomp) { p.DefaultAction = "SCMP_ACT_NOPE" }, ErrInvalidProfile, `defaultAction: invalid seccomp profile: unknown action "SCMP_ACT_NOPE"`},
		{"notify", func(p *specs.LinuxSeccomp) { p.Syscalls[0].Action = specs.ActNotify }, ErrUnsupported, "syscalls[0] (read): seccomp: not supported by berth: action SCMP_ACT_NOTIFY"},
		{"unknown op", func(p *specs.LinuxSeccomp) { p.Syscalls[0].Args[0].Op = "SCMP_CMP_XX" }, ErrInvalidProfile, `syscalls[0] (read): args[0]: invalid seccomp profile: unknown operator "SCMP_CMP_XX"`},
		{"argument 6", func(p *specs.LinuxSeccomp) { p.Syscalls[0].Args[0].Index = 6 }, ErrInvalidProfile, "index 6"},
		{"unknown arch", func(p *specs.LinuxSeccomp) { p.Architectures = []specs.Arch{"SCMP_ARCH_Z80"} }, ErrInvalidProfile, `unknown architecture "SCMP_ARCH_Z80"`},
		{"unknown flag", func(p *specs.LinuxSeccomp) { p.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_X"} }, ErrInvalidProfile, `unknown flag "SECCOMP_FILTER_FLAG_X"`},
		{"no names", func(p *specs.LinuxSeccomp) { p.Syscalls[0].Names = nil }, ErrInvalidProfile, "no syscall names"},
	} {
		cfg := profile(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Op: specs.OpEqualTo}}})
		c.edit(cfg)
		_, err := Compile(cfg, "amd64")
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want %v containing %q", c.what, err, c.is, c.msg)
		}
	}
	if _, err := Compile(profile(), "riscv64"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("riscv64: got %v, want ErrUnsupported", err)
	}
}

func TestFlags(t *testing.T) {
	for _, c := range []struct {
		flags []specs.LinuxSeccompFlag
		want  uint
	}{
		{nil, flagSpecAllow},
		{[]specs.LinuxSeccompFlag{}, 0},
		{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}, flagLog},
		{[]specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagSpecAllow}, flagSpecAllow},
	} {
		cfg := profile()
		cfg.Flags = c.flags
		p, err := Compile(cfg, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		if p.Flags != c.want {
			t.Errorf("flags %v: got %#x, want %#x", c.flags, p.Flags, c.want)
		}
	}
}

// The table is sorted for the binary search, and agrees with x/sys on a
// few numbers it is generated from.
func TestSyscallTable(t *testing.T) {
	for i := 1; i < len(syscallTable); i++ {
		if syscallTable[i-1].name >= syscallTable[i].name {
			t.Fatalf("syscallTable not sorted at %q, %q", syscallTable[i-1].name, syscallTable[i].name)
		}
	}
	for _, c := range []struct {
		abi  *abi
		name string
		want uint32
	}{
		{abiX86_64, "read", 0},
		{abiX86_64, "clone3", 435},
		{abiX86, "socketcall", 102},
		{abiX86, "socket", 359},
		{abiX32, "read", x32SyscallBit},
		{abiX32, "rt_sigaction", x32SyscallBit | 512},
		{abiAArch64, "newfstatat", 79},
		{abiARM, "set_tls", 0x0f0005},
	} {
		if got, ok := c.abi.syscallNumber(c.name); !ok || got != c.want {
			t.Errorf("%s %s: got %#x, %v, want %#x", c.abi.scmp, c.name, got, ok, c.want)
		}
	}
	if _, ok := abiAArch64.syscallNumber("open"); ok {
		t.Error("aarch64 has an open syscall")
	}
}
