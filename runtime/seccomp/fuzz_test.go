package seccomp

import (
	"errors"
	"testing"
)

// FuzzLoadProfile: loading and compiling any bytes fails with one of the
// package's errors or gives a program the kernel would take; it never
// panics. The seed corpus (testdata/fuzz/FuzzLoadProfile) has docker's
// default profile as JSON and small profiles using each feature.
func FuzzLoadProfile(f *testing.F) {
	f.Add([]byte(denyMkdir))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseProfile(data, dockerCaps)
		if err != nil {
			if !errors.Is(err, ErrInvalidProfile) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("ParseProfile: an error of no sentinel: %v", err)
			}
			return
		}
		if cfg == nil {
			return // seccomp off
		}
		for _, goarch := range []string{"amd64", "arm64"} {
			p, err := Compile(cfg, goarch)
			if err != nil {
				if !errors.Is(err, ErrInvalidProfile) && !errors.Is(err, ErrUnsupported) {
					t.Fatalf("Compile %s: an error of no sentinel: %v", goarch, err)
				}
				return
			}
			if n := len(p.Instructions); n == 0 || n > maxInstructions {
				t.Fatalf("Compile %s: %d instructions", goarch, n)
			}
			// bpf.NewVM checks what the kernel's checker does: every jump
			// lands in the program, and it ends with a return.
			vm := newFilterVM(t, p)
			for _, arch := range []uint32{auditArchX86_64, auditArchI386, auditArchAArch64, auditArchARM} {
				vm.run(arch, 0, 1, 2, 3)
				vm.run(arch, x32SyscallBit|1, 0xffff_ffff_ffff_ffff)
			}
		}
	})
}
