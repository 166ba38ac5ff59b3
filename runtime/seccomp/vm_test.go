package seccomp

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// dockerCaps is docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Return values as the tests spell them.
const (
	allow       = retAllow
	eperm       = retErrno | errnoEPERM
	enosys      = retErrno | errnoENOSYS
	killProcess = retKillProcess
	killThread  = retKillThread
)

// Some AUDIT_ARCH_* of ABIs no berth host runs.
const (
	auditArchPPC64LE = 0xc0000015
	auditArchS390X   = 0x80000016
)

// filterVM runs a compiled program on synthetic seccomp_data.
type filterVM struct {
	t  *testing.T
	vm *bpf.VM
}

func newFilterVM(t *testing.T, p *Program) *filterVM {
	t.Helper()
	ins, ok := bpf.Disassemble(p.Instructions)
	if !ok {
		t.Fatal("the program has an instruction golang.org/x/net/bpf does not know")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("bpf.NewVM: %v", err)
	}
	return &filterVM{t: t, vm: vm}
}

// run is the filter's verdict on a syscall. x/net/bpf loads words in
// network order and the kernel in host order, so each 32-bit word of
// seccomp_data goes in big-endian: the VM reads the value the kernel
// would, and an argument's low word stays at the lower offset.
func (f *filterVM) run(arch, nr uint32, args ...uint64) uint32 {
	f.t.Helper()
	var data [64]byte
	binary.BigEndian.PutUint32(data[0:], nr)
	binary.BigEndian.PutUint32(data[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(data[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[offArgs+8*i+4:], uint32(a>>32))
	}
	out, err := f.vm.Run(data[:])
	if err != nil {
		f.t.Fatalf("run the filter: %v", err)
	}
	return uint32(out)
}

// nr is a syscall's number in an ABI, failing the test if it has none.
func nr(t *testing.T, a *abi, name string) uint32 {
	t.Helper()
	n, ok := a.syscallNumber(name)
	if !ok {
		t.Fatalf("no syscall %s in %s", name, a.scmp)
	}
	return n
}

func retName(r uint32) string {
	switch r & 0xffff0000 {
	case retAllow:
		return "ALLOW"
	case retErrno:
		return fmt.Sprintf("ERRNO(%d)", r&retDataMask)
	case retKillProcess:
		return "KILL_PROCESS"
	case retKillThread:
		return "KILL_THREAD"
	case retTrace:
		return fmt.Sprintf("TRACE(%d)", r&retDataMask)
	}
	return fmt.Sprintf("%#x", r)
}

func compileDefault(t *testing.T, caps []string, goarch string) *Program {
	t.Helper()
	cfg, err := DefaultProfile(caps)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(cfg, goarch)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	cloneNewUser = 0x10000000
	cloneNewNS   = 0x00020000
	sigchld      = 17
	afUnix       = 1
	afInet       = 2
	afInet6      = 10
	afALG        = 38
	afVsock      = 40
)

type syscallCase struct {
	abi  *abi
	name string
	args []uint64
	want uint32
}

func checkCases(t *testing.T, vm *filterVM, cases []syscallCase) {
	t.Helper()
	for _, c := range cases {
		got := vm.run(c.abi.audit, nr(t, c.abi, c.name), c.args...)
		if got != c.want {
			t.Errorf("%s %s(%#x) = %s, want %s", c.abi.scmp, c.name, c.args, retName(got), retName(c.want))
		}
	}
}

func TestDefaultProfile(t *testing.T) {
	vm := newFilterVM(t, compileDefault(t, dockerCaps, "amd64"))
	x64, x86, x32 := abiX86_64, abiX86, abiX32
	checkCases(t, vm, []syscallCase{
		{x64, "read", nil, allow},
		{x64, "write", nil, allow},
		{x64, "execve", nil, allow},
		{x64, "rt_sigaction", nil, allow},
		{x64, "unshare", []uint64{cloneNewUser}, eperm},
		{x64, "keyctl", nil, eperm},
		{x64, "mount", nil, eperm},
		{x64, "bpf", nil, eperm},
		{x64, "kexec_load", nil, eperm},
		{x64, "open_by_handle_at", nil, eperm},
		{x64, "userfaultfd", nil, eperm},
		{x64, "reboot", nil, eperm},
		// clone: namespaces need CAP_SYS_ADMIN, plain forks do not.
		{x64, "clone", []uint64{sigchld}, allow},
		{x64, "clone", []uint64{cloneNewUser | sigchld}, eperm},
		{x64, "clone", []uint64{cloneNewNS}, eperm},
		// clone3's flags are behind a pointer: ENOSYS makes libc use clone.
		{x64, "clone3", nil, enosys},
		{x64, "personality", []uint64{0}, allow},
		{x64, "personality", []uint64{0x0008}, allow},
		{x64, "personality", []uint64{0xffffffff}, allow},
		{x64, "personality", []uint64{0x0400000}, eperm},         // READ_IMPLIES_EXEC
		{x64, "personality", []uint64{0x1_0000_0000}, eperm},     // differs in the high word only
		{x64, "socket", []uint64{afUnix}, allow},                 // the LT 3 range
		{x64, "socket", []uint64{afInet}, allow},                 // the LT 3 range
		{x64, "socket", []uint64{afInet6}, allow},                // an EQ rule
		{x64, "socket", []uint64{afVsock}, eperm},                // blocked by the profile
		{x64, "socket", []uint64{afALG}, eperm},                  // blocked by the profile
		{x64, "socket", []uint64{3}, eperm},                      // AF_AX25, removed from the kernel
		{x64, "socket", []uint64{afInet | 0x1_0000_0000}, eperm}, // high word set
		// i386 programs run under their own numbers and 32-bit compares.
		{x86, "read", nil, allow},
		{x86, "socketcall", nil, allow},
		{x86, "unshare", nil, eperm},
		{x86, "socket", []uint64{afInet}, allow},
		{x86, "socket", []uint64{afVsock}, eperm},
		{x86, "socket", []uint64{afInet | 0x1_0000_0000}, allow}, // i386 has no high word
		{x86, "clone", []uint64{cloneNewUser}, eperm},
		{x86, "clone3", nil, enosys},
		// x32 is in docker's archMap for x86_64.
		{x32, "read", nil, allow},
		{x32, "rt_sigaction", nil, allow},
		{x32, "mount", nil, eperm},
		{x32, "clone3", nil, enosys},
	})

	for _, c := range []struct {
		what     string
		arch, nr uint32
		want     uint32
	}{
		{"a syscall newer than the profile", auditArchX86_64, 1000, enosys},
		{"an x32 syscall newer than the profile", auditArchX86_64, x32SyscallBit | 1000, enosys},
		{"an i386 syscall newer than the profile", auditArchI386, 1000, enosys},
		{"an old syscall the profile leaves out (kexec_file_load)", auditArchX86_64, 320, eperm},
		{"the number -1", auditArchX86_64, 0xffffffff, enosys},
		{"ppc64le", auditArchPPC64LE, 0, killProcess},
		{"s390x", auditArchS390X, 0, killProcess},
		{"arm on an amd64 host", auditArchARM, 3, killProcess},
		{"aarch64 on an amd64 host", auditArchAArch64, 63, killProcess},
	} {
		if got := vm.run(c.arch, c.nr); got != c.want {
			t.Errorf("%s: got %s, want %s", c.what, retName(got), retName(c.want))
		}
	}
}

func TestDefaultProfileCapabilities(t *testing.T) {
	withAdmin := append(append([]string{}, dockerCaps...), "SYS_ADMIN", "cap_sys_ptrace")
	vm := newFilterVM(t, compileDefault(t, withAdmin, "amd64"))
	x64 := abiX86_64
	checkCases(t, vm, []syscallCase{
		{x64, "mount", nil, allow},
		{x64, "unshare", []uint64{cloneNewUser}, allow},
		{x64, "setns", nil, allow},
		{x64, "clone", []uint64{cloneNewUser | sigchld}, allow},
		{x64, "clone3", nil, allow},
		{x64, "ptrace", nil, allow},
		{x64, "kcmp", nil, allow},
		{x64, "reboot", nil, eperm},      // needs CAP_SYS_BOOT
		{x64, "init_module", nil, eperm}, // needs CAP_SYS_MODULE
	})

	// Without any capability even chroot is gone.
	vm = newFilterVM(t, compileDefault(t, nil, "amd64"))
	checkCases(t, vm, []syscallCase{
		{x64, "chroot", nil, eperm},
		{x64, "read", nil, allow},
	})
}

func TestDefaultProfileArm64(t *testing.T) {
	cfg, err := DefaultProfile(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	// DefaultProfile resolves docker's archMap and arch rules for this
	// (amd64) host; on an arm64 host they give aarch64, arm, and arm's own
	// syscalls.
	cfg.Architectures = []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	cfg.Syscalls = append(cfg.Syscalls, specs.LinuxSyscall{
		Names:  []string{"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"},
		Action: specs.ActAllow,
	})
	p, err := Compile(cfg, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	vm := newFilterVM(t, p)
	a64, arm := abiAArch64, abiARM
	checkCases(t, vm, []syscallCase{
		{a64, "read", nil, allow},
		{a64, "newfstatat", nil, allow},
		{a64, "mount", nil, eperm},
		{a64, "clone", []uint64{cloneNewUser}, eperm},
		{a64, "clone", []uint64{sigchld}, allow},
		{a64, "clone3", nil, enosys},
		{arm, "read", nil, allow},
		{arm, "set_tls", nil, allow}, // arm's private syscalls, 0x0f0005
		{arm, "breakpoint", nil, allow},
		{arm, "mount", nil, eperm},
		{arm, "socket", []uint64{afVsock}, eperm},
	})
	if got := vm.run(auditArchX86_64, 0); got != killProcess {
		t.Errorf("x86_64 on an arm64 host: got %s, want KILL_PROCESS", retName(got))
	}
	if got := vm.run(auditArchAArch64, 1000); got != enosys {
		t.Errorf("a syscall newer than the profile: got %s, want ERRNO(ENOSYS)", retName(got))
	}
}
