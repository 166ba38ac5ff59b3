package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
)

// programMagic starts a program's binary form; a new form gets a new one.
const programMagic = "BSF1"

// MarshalBinary is the program as berth keeps it beside a container: the
// magic, the flags (uint32) and the instructions (op uint16, jt, jf uint8,
// k uint32), little-endian. A container's filter is compiled once, when it
// is created, and every start, exec and healthcheck installs these bytes.
func (p *Program) MarshalBinary() ([]byte, error) {
	out := make([]byte, 0, len(programMagic)+4+8*len(p.Instructions))
	out = append(out, programMagic...)
	out = binary.LittleEndian.AppendUint32(out, uint32(p.Flags))
	for _, ins := range p.Instructions {
		out = binary.LittleEndian.AppendUint16(out, ins.Op)
		out = append(out, ins.Jt, ins.Jf)
		out = binary.LittleEndian.AppendUint32(out, ins.K)
	}
	return out, nil
}

// UnmarshalBinary reads what MarshalBinary wrote.
func (p *Program) UnmarshalBinary(data []byte) error {
	if len(data) < len(programMagic)+4 || string(data[:len(programMagic)]) != programMagic {
		return errors.New("not a compiled seccomp filter of this berth")
	}
	body := data[len(programMagic)+4:]
	if len(body)%8 != 0 || len(body) == 0 || len(body)/8 > maxInstructions {
		return fmt.Errorf("compiled seccomp filter: %d bytes of instructions, want a multiple of 8, at most %d instructions", len(body), maxInstructions)
	}
	p.Flags = uint(binary.LittleEndian.Uint32(data[len(programMagic):]))
	p.Instructions = make([]bpf.RawInstruction, len(body)/8)
	for i := range p.Instructions {
		b := body[8*i:]
		p.Instructions[i] = bpf.RawInstruction{Op: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.LittleEndian.Uint32(b[4:])}
	}
	return nil
}
