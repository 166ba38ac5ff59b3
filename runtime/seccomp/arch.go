package seccomp

//go:generate go run gen_tables.go

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// The syscall tables, the columns of syscallTable (ztables.go).
const (
	tableX86_64 = iota
	tableX86
	tableX32
	tableAArch64
	tableARM
	numTables
)

type syscallRow struct {
	name string
	nr   [numTables]int32
}

// The AUDIT_ARCH_* values the kernel puts in seccomp_data.arch
// (<linux/audit.h>: EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE).
const (
	auditArchX86_64  = 0xc000003e
	auditArchI386    = 0x40000003
	auditArchAArch64 = 0xc00000b7
	auditArchARM     = 0x40000028
)

// x32SyscallBit marks an x32 syscall: x32 shares AUDIT_ARCH_X86_64 with
// x86_64 and the kernel tells the ABIs apart by this bit of the number.
const x32SyscallBit = 0x40000000

// abi is one syscall ABI a filter can have a section for.
type abi struct {
	scmp  specs.Arch // its name in profiles
	audit uint32     // seccomp_data.arch of its syscalls
	table int        // its column of syscallTable
	base  uint32     // added to the table's numbers (x32's bit)
	// is32 makes argument comparisons look at the low 32 bits only, as
	// libseccomp does for its 32-bit ABIs: i386 and arm pass 32-bit
	// registers, which the kernel zero-extends, and x32, whose registers
	// are 64-bit, libseccomp counts as 32-bit too.
	is32 bool
}

var (
	abiX86_64  = &abi{scmp: specs.ArchX86_64, audit: auditArchX86_64, table: tableX86_64}
	abiX86     = &abi{scmp: specs.ArchX86, audit: auditArchI386, table: tableX86, is32: true}
	abiX32     = &abi{scmp: specs.ArchX32, audit: auditArchX86_64, table: tableX32, base: x32SyscallBit, is32: true}
	abiAArch64 = &abi{scmp: specs.ArchAARCH64, audit: auditArchAArch64, table: tableAArch64}
	abiARM     = &abi{scmp: specs.ArchARM, audit: auditArchARM, table: tableARM, is32: true}
)

// host is what a machine of one GOARCH can run: its native ABI, which
// libseccomp always puts in a filter, and the others its CPU and kernel may
// run (an amd64 kernel runs i386 and x32 programs, an arm64 one arm).
type host struct {
	native *abi
	others []*abi
}

var hosts = map[string]host{
	"amd64": {native: abiX86_64, others: []*abi{abiX86, abiX32}},
	"arm64": {native: abiAArch64, others: []*abi{abiARM}},
}

// knownArches are the SCMP_ARCH_* names libseccomp accepts. A profile may
// list any of them; those the host cannot run get no section, since the
// kernel never reports their AUDIT_ARCH there.
var knownArches = map[specs.Arch]bool{
	specs.ArchX86: true, specs.ArchX86_64: true, specs.ArchX32: true,
	specs.ArchARM: true, specs.ArchAARCH64: true,
	specs.ArchMIPS: true, specs.ArchMIPS64: true, specs.ArchMIPS64N32: true,
	specs.ArchMIPSEL: true, specs.ArchMIPSEL64: true, specs.ArchMIPSEL64N32: true,
	specs.ArchPPC: true, specs.ArchPPC64: true, specs.ArchPPC64LE: true,
	specs.ArchS390: true, specs.ArchS390X: true,
	specs.ArchPARISC: true, specs.ArchPARISC64: true,
	specs.ArchRISCV64: true, specs.ArchLOONGARCH64: true,
	"SCMP_ARCH_M68K": true, "SCMP_ARCH_SH": true, "SCMP_ARCH_SHEB": true,
}

// abis are the ABIs of a filter for the profile's architectures on a host
// of goarch: the native one first, then the profile's others that the
// host can run.
func abis(goarch string, arches []specs.Arch) ([]*abi, error) {
	h, ok := hosts[goarch]
	if !ok {
		return nil, fmt.Errorf("%w: no syscall tables for GOARCH %s", ErrUnsupported, goarch)
	}
	out := []*abi{h.native}
	for _, a := range arches {
		if !knownArches[a] {
			return nil, fmt.Errorf("%w: unknown architecture %q", ErrInvalidProfile, a)
		}
		for _, o := range h.others {
			if o.scmp == a && !containsABI(out, o) {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

func containsABI(list []*abi, a *abi) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// rowOf is the row of syscallTable for a syscall name, -1 if no ABI
// berth filters has it.
func rowOf(name string) int {
	lo, hi := 0, len(syscallTable)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if syscallTable[m].name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(syscallTable) || syscallTable[lo].name != name {
		return -1
	}
	return lo
}

// number is the number of the syscall of a syscallTable row in the ABI, as
// seccomp_data.nr holds it; false when the ABI has no such syscall, which
// libseccomp and runc skip (a profile names syscalls of every ABI).
func (a *abi) number(row int32) (uint32, bool) {
	nr := syscallTable[row].nr[a.table]
	if nr < 0 {
		return 0, false
	}
	return uint32(nr) | a.base, true
}

// syscallNumber is number by name.
func (a *abi) syscallNumber(name string) (uint32, bool) {
	row := rowOf(name)
	if row < 0 {
		return 0, false
	}
	return a.number(int32(row))
}
