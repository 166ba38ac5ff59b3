package seccomp

import (
	"fmt"
	"slices"

	"golang.org/x/net/bpf"
)

// Classic BPF opcodes (<linux/bpf_common.h>), the few a filter needs.
const (
	opLoadWord = 0x00 | 0x00 | 0x20 // BPF_LD | BPF_W | BPF_ABS
	opAnd      = 0x04 | 0x50 | 0x00 // BPF_ALU | BPF_AND | BPF_K
	opJA       = 0x05 | 0x00        // BPF_JMP | BPF_JA
	opJEQ      = 0x05 | 0x10 | 0x00 // BPF_JMP | BPF_JEQ | BPF_K
	opJGT      = 0x05 | 0x20 | 0x00 // BPF_JMP | BPF_JGT | BPF_K
	opJGE      = 0x05 | 0x30 | 0x00 // BPF_JMP | BPF_JGE | BPF_K
	opJSET     = 0x05 | 0x40 | 0x00 // BPF_JMP | BPF_JSET | BPF_K
	opRet      = 0x06 | 0x00        // BPF_RET | BPF_K

	// maxInstructions is the kernel's BPF_MAXINSNS.
	maxInstructions = 4096
	// maxCondJump is the farthest a conditional jump reaches: its jt and jf
	// are 8-bit counts of instructions to skip.
	maxCondJump = 255
)

// builder assembles a program back to front, as runc's patchbpf does:
// every jump goes forward, so when a jump is written its targets are
// already placed and its distances known. A conditional jump whose target
// is too far for 8 bits goes through a nearby copy of the target when that
// is a return (as fast, and as small as a jump), else through a ja, whose
// offset has 32 bits.
type builder struct {
	rev  []bpf.RawInstruction // the program reversed: rev[0] is its last instruction
	rets map[uint32]label     // the latest placed return of each value
	jas  map[label]label      // the latest placed ja to each far label
}

// label is an instruction, by its index in builder.rev: it counts from the
// end of the program, so it stays valid while instructions go in front.
type label int

// target is where a jump goes: a placed instruction, or "return this value"
// for the builder to place or reuse.
type target struct {
	at    label
	ret   uint32
	isRet bool
}

func at(l label) target     { return target{at: l} }
func retOf(k uint32) target { return target{ret: k, isRet: true} }

func newBuilder() *builder {
	return &builder{
		rev:  make([]bpf.RawInstruction, 0, 2048),
		rets: map[uint32]label{},
		jas:  map[label]label{},
	}
}

func (b *builder) emit(ins bpf.RawInstruction) label {
	b.rev = append(b.rev, ins)
	return label(len(b.rev) - 1)
}

// skip is how many instructions a jump placed now skips to reach l.
func (b *builder) skip(l label) int { return len(b.rev) - int(l) - 1 }

// ret places a return of k.
func (b *builder) ret(k uint32) label {
	l := b.emit(bpf.RawInstruction{Op: opRet, K: k})
	b.rets[k] = l
	return l
}

// load places a load of the 32-bit word at off in seccomp_data.
func (b *builder) load(off uint32) label {
	return b.emit(bpf.RawInstruction{Op: opLoadWord, K: off})
}

// and places A &= k.
func (b *builder) and(k uint32) label {
	return b.emit(bpf.RawInstruction{Op: opAnd, K: k})
}

// near resolves t to a label that a conditional jump placed after slack
// more instructions can reach. It places a return or a ja when it must:
// only ever right after a conditional jump (in program order), which never
// falls through into it.
func (b *builder) near(t target, slack int) label {
	if t.isRet {
		if l, ok := b.rets[t.ret]; ok && b.skip(l)+slack <= maxCondJump {
			return l
		}
		return b.ret(t.ret)
	}
	if b.skip(t.at)+slack <= maxCondJump {
		return t.at
	}
	if l, ok := b.jas[t.at]; ok && b.skip(l)+slack <= maxCondJump {
		return l
	}
	l := b.emit(bpf.RawInstruction{Op: opJA, K: uint32(b.skip(t.at))})
	b.jas[t.at] = l
	return l
}

// place makes t the instruction that the next one placed falls through
// into, placing a return or a ja when t is not already there.
func (b *builder) place(t target) label {
	switch {
	case t.isRet:
		return b.ret(t.ret)
	case b.skip(t.at) == 0:
		return t.at
	}
	return b.emit(bpf.RawInstruction{Op: opJA, K: uint32(b.skip(t.at))})
}

// jump places "if A op k goto jt else goto jf".
func (b *builder) jump(op uint16, k uint32, jt, jf target) label {
	// jf first, with room for the ja or return that jt may still need.
	f := b.near(jf, 1)
	t := b.near(jt, 0)
	return b.emit(bpf.RawInstruction{Op: op, Jt: uint8(b.skip(t)), Jf: uint8(b.skip(f)), K: k})
}

// program is the assembled program, front to back. It reverses the
// builder's instructions in place: the builder is done.
func (b *builder) program() ([]bpf.RawInstruction, error) {
	n := len(b.rev)
	if n > maxInstructions {
		return nil, fmt.Errorf("%w: the filter needs %d BPF instructions, more than the kernel's limit of %d", ErrInvalidProfile, n, maxInstructions)
	}
	slices.Reverse(b.rev)
	return b.rev, nil
}
