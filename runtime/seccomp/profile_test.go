package seccomp

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
)

// denyMkdir is a custom profile in docker's format: everything allowed but
// mkdir and mkdirat, and mount unless the container has CAP_SYS_ADMIN.
const denyMkdir = `{
	"defaultAction": "SCMP_ACT_ALLOW",
	"archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
	            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
	"syscalls": [
		{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
		{"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
	]
}`

func TestParseProfile(t *testing.T) {
	for _, c := range []struct {
		caps                 []string
		mkdir, mount, getpid uint32
	}{
		{dockerCaps, eperm, retErrno | 13, allow},
		{[]string{"SYS_ADMIN"}, eperm, allow, allow},
	} {
		cfg, err := ParseProfile([]byte(denyMkdir), c.caps)
		if err != nil {
			t.Fatal(err)
		}
		vm := compileVM(t, cfg)
		checkCases(t, vm, []syscallCase{
			{abiX86_64, "mkdir", nil, c.mkdir},
			{abiX86_64, "mkdirat", nil, c.mkdir},
			{abiX86, "mkdir", nil, c.mkdir},
			{abiX86_64, "mount", nil, c.mount},
			{abiX86_64, "getpid", nil, c.getpid},
		})
		// An ALLOW default has no -ENOSYS stub.
		if got := vm.run(auditArchX86_64, 1000); got != allow {
			t.Errorf("syscall 1000: got %s, want ALLOW", retName(got))
		}
	}
}

func TestParseProfileErrors(t *testing.T) {
	for _, c := range []struct {
		what, json string
		is         error
		msg        string
	}{
		{"bad JSON", "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [,]\n}", ErrInvalidProfile, "line 3, column 16: invalid character ','"},
		{"wrong type", `{"defaultAction": 5}`, ErrInvalidProfile, "line 1, column 19: defaultAction: a number where a string belongs"},
		{"unknown default action", `{"defaultAction": "SCMP_ACT_DENY"}`, ErrInvalidProfile, `defaultAction: invalid seccomp profile: unknown action "SCMP_ACT_DENY"`},
		{"no default action", `{"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}`, ErrInvalidProfile, "defaultAction: invalid seccomp profile: no action"},
		{"unknown action", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_FOO"}]}`, ErrInvalidProfile, `syscalls[1] (mkdir, mkdirat): invalid seccomp profile: unknown action "SCMP_ACT_FOO"`},
		// Checked even when the rule does not apply to this container.
		{"unknown op in an excluded rule", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}], "includes": {"caps": ["CAP_BPF"]}}]}`, ErrInvalidProfile, `syscalls[0] (read): args[0]: invalid seccomp profile: unknown operator "SCMP_CMP_LIKE"`},
		{"unknown arch", `{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_PDP11"]}`, ErrInvalidProfile, `architectures[1]: invalid seccomp profile: unknown architecture "SCMP_ARCH_PDP11"`},
		{"unknown sub-arch", `{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_I386"]}]}`, ErrInvalidProfile, `archMap[0]: invalid seccomp profile: unknown architecture "SCMP_ARCH_I386"`},
		{"both arch lists", `{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`, ErrInvalidProfile, "both architectures and archMap"},
		{"name and names", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}`, ErrInvalidProfile, "both name and names"},
		{"argument index", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`, ErrInvalidProfile, "index 7"},
		{"wrong type deep down", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": "0"}]}]}`, ErrInvalidProfile, "syscalls.args.index: a string where a uint belongs"},
		{"bad minKernel", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "five"}}]}`, ErrInvalidProfile, "invalid kernel version"},
		{"unknown flag", `{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_FAST"]}`, ErrInvalidProfile, `flags: invalid seccomp profile: unknown flag "SECCOMP_FILTER_FLAG_FAST"`},
		{"notify", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["openat"], "action": "SCMP_ACT_NOTIFY"}]}`, ErrUnsupported, "SCMP_ACT_NOTIFY hands syscalls to a seccomp agent"},
	} {
		_, err := ParseProfile([]byte(c.json), dockerCaps)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want %v containing %q", c.what, err, c.is, c.msg)
		}
	}
}

func TestLoadProfile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"defaultAction": "SCMP_ACT_NOPE"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadProfile(bad, nil)
	if want := "seccomp profile " + bad + ": defaultAction: invalid seccomp profile: unknown action"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %q", err, want)
	}
	_, err = LoadProfile(filepath.Join(dir, "missing.json"), nil)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: got %v", err)
	}

	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(denyMkdir), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadProfile(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Syscalls) != 2 {
		t.Errorf("got %d syscall rules, want 2 (mkdir, and mount without CAP_SYS_ADMIN)", len(cfg.Syscalls))
	}
}

// A profile with neither a default action nor syscalls turns seccomp off,
// as in docker; the default profile is used for no profile at all.
func TestFilter(t *testing.T) {
	p, err := Filter([]byte(`{}`), dockerCaps)
	if err != nil || p != nil {
		t.Errorf("empty profile: got %v, %v, want no filter", p, err)
	}
	p, err = Filter(nil, dockerCaps)
	if err != nil || p == nil {
		t.Fatalf("default profile: got %v, %v", p, err)
	}
	vm := newFilterVM(t, p)
	if got := vm.run(auditArchX86_64, nr(t, abiX86_64, "unshare")); got != eperm {
		t.Errorf("default profile: unshare got %s, want ERRNO(EPERM)", retName(got))
	}
	if p.Flags != flagSpecAllow {
		t.Errorf("default profile: flags %#x, want SPEC_ALLOW as runc", p.Flags)
	}
	if _, err := Filter([]byte(`{"defaultAction": 1}`), nil); !errors.Is(err, ErrInvalidProfile) {
		t.Errorf("bad profile: got %v, want ErrInvalidProfile", err)
	}
}

// The JSON of docker's default profile, as `docker run --security-opt
// seccomp=default.json` reads it, gives the same filter as DefaultProfile.
func TestDefaultProfileJSON(t *testing.T) {
	data, err := json.Marshal(mobyseccomp.DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := Filter(data, dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	builtin, err := Filter(nil, dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	if len(fromJSON.Instructions) != len(builtin.Instructions) {
		t.Fatalf("from JSON: %d instructions, built in: %d", len(fromJSON.Instructions), len(builtin.Instructions))
	}
	for i := range builtin.Instructions {
		if fromJSON.Instructions[i] != builtin.Instructions[i] {
			t.Fatalf("instruction %d: from JSON %v, built in %v", i, fromJSON.Instructions[i], builtin.Instructions[i])
		}
	}
}
