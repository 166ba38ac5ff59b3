package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// A profile in docker's JSON format (`docker run --security-opt
// seccomp=profile.json`, moby/profiles' Seccomp) has rules that apply only
// with some capabilities, on some architectures or from some kernel
// version on. Turning it into a runtime-spec profile for one container is
// docker's own code (moby/profiles' LoadProfile), so the result is what
// docker would hand to runc; this file adds the checks that runc would
// make later, with errors that say where the profile is wrong.

// Filter is the filter a container's init installs: profileJSON is a
// profile in docker's JSON format, nil or empty for docker's default
// profile; caps is the container's capability set, as for DefaultProfile.
// It returns nil, nil when the profile turns seccomp off, as docker does
// for one with neither a defaultAction nor syscalls.
func Filter(profileJSON []byte, caps []string) (*Program, error) {
	var (
		cfg *specs.LinuxSeccomp
		err error
	)
	if len(profileJSON) == 0 {
		cfg, err = DefaultProfile(caps)
	} else {
		cfg, err = ParseProfile(profileJSON, caps)
	}
	if err != nil || cfg == nil {
		return nil, err
	}
	return Compile(cfg, runtime.GOARCH)
}

// DefaultProfile is docker's default profile (moby/profiles) for a
// container with the capabilities caps, by docker's names ("CAP_SYS_ADMIN",
// or "SYS_ADMIN"). Docker matches the profile's capability rules against
// the container's bounding set, which is its capability list even when the
// process runs as a user and its effective set is empty; pass that list.
func DefaultProfile(caps []string) (*specs.LinuxSeccomp, error) {
	cfg, err := mobyseccomp.GetDefaultProfile(specWithCaps(caps))
	if err != nil {
		return nil, fmt.Errorf("docker's default seccomp profile: %w", err)
	}
	return cfg, nil
}

// LoadProfile is ParseProfile of the file at path; its errors name the
// file.
func LoadProfile(path string, caps []string) (*specs.LinuxSeccomp, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seccomp profile: %w", err)
	}
	cfg, err := ParseProfile(data, caps)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	return cfg, nil
}

// ParseProfile reads a profile in docker's JSON format and resolves it for
// a container with the capabilities caps (see DefaultProfile) on this
// host. It checks the whole profile, rules for other capabilities and
// architectures included, and fails with ErrInvalidProfile naming what is
// wrong and where. It returns nil, nil for a profile that turns seccomp
// off (no defaultAction and no syscalls), as docker.
func ParseProfile(data []byte, caps []string) (*specs.LinuxSeccomp, error) {
	var p mobyseccomp.Seccomp
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, jsonError(data, err)
	}
	if err := checkProfile(&p); err != nil {
		return nil, err
	}
	// moby's LoadProfile decodes the JSON again: it takes no decoded
	// profile. Custom profiles are rare and small, and this keeps docker's
	// conversion docker's.
	cfg, err := mobyseccomp.LoadProfile(string(data), specWithCaps(caps))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProfile, err)
	}
	return cfg, nil
}

// checkProfile checks what runc would refuse, or what docker's conversion
// would refuse with a less precise message.
func checkProfile(p *mobyseccomp.Seccomp) error {
	if p.DefaultAction == "" && len(p.Syscalls) == 0 {
		return nil // seccomp off
	}
	if _, err := actionRet(p.DefaultAction, p.DefaultErrnoRet); err != nil {
		return fmt.Errorf("defaultAction: %w", err)
	}
	if _, err := filterFlags(p.Flags); err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	if len(p.Architectures) != 0 && len(p.ArchMap) != 0 {
		return fmt.Errorf("%w: both architectures and archMap are set; use one", ErrInvalidProfile)
	}
	for i, a := range p.Architectures {
		if !knownArches[a] {
			return fmt.Errorf("architectures[%d]: %w: unknown architecture %q", i, ErrInvalidProfile, a)
		}
	}
	for i, m := range p.ArchMap {
		for _, a := range append([]specs.Arch{m.Arch}, m.SubArches...) {
			if !knownArches[a] {
				return fmt.Errorf("archMap[%d]: %w: unknown architecture %q", i, ErrInvalidProfile, a)
			}
		}
	}
	for i, s := range p.Syscalls {
		if s == nil {
			return fmt.Errorf("syscalls[%d]: %w: null", i, ErrInvalidProfile)
		}
		ls := s.LinuxSyscall
		if s.Name != "" {
			if len(s.Names) != 0 {
				return fmt.Errorf("%s: %w: both name and names are set; use names", syscallWhere(i, s.Names), ErrInvalidProfile)
			}
			ls.Names = []string{s.Name}
		}
		if err := checkSyscall(&ls); err != nil {
			return fmt.Errorf("%s: %w", syscallWhere(i, ls.Names), err)
		}
	}
	return nil
}

// specWithCaps is the part of a runtime spec that docker's conversion
// reads: the capabilities its rules test.
func specWithCaps(caps []string) *specs.Spec {
	bounding := make([]string, len(caps))
	for i, c := range caps {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		bounding[i] = c
	}
	return &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: bounding}}}
}

// jsonError says where bad JSON is bad: line and column for a syntax
// error, the field for a value of the wrong type.
func jsonError(data []byte, err error) error {
	// Both errors' Offset is just past the byte that was wrong.
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line, col := position(data, syn.Offset-1)
		return fmt.Errorf("%w: line %d, column %d: %w", ErrInvalidProfile, line, col, err)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		line, col := position(data, typ.Offset-1)
		return fmt.Errorf("%w: line %d, column %d: %s: a %s where a %s belongs", ErrInvalidProfile, line, col, jsonField(typ.Field), typ.Value, typ.Type.Kind())
	}
	return fmt.Errorf("%w: %w", ErrInvalidProfile, err)
}

// jsonField is a field path as the profile spells it, without the Go
// names of the structs that moby's types embed ("LinuxSyscall").
func jsonField(path string) string {
	var out []string
	for _, p := range strings.Split(path, ".") {
		if p != "" && (p[0] < 'A' || p[0] > 'Z') {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

// position is the 1-based line and column of a byte offset.
func position(data []byte, offset int64) (int, int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}
