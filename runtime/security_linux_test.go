package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCapabilitiesByDockersRules(t *testing.T) {
	all := fmt.Sprintf("%016x", ownBounding())
	for _, tc := range []struct {
		name string
		sec  Security
		want string // as /proc/self/status shows a set
	}{
		{"default", Security{}, "00000000a80425fb"},
		{"drop all", Security{CapDrop: []string{"ALL"}}, "0000000000000000"},
		{"drop all add chown", Security{CapDrop: []string{"all"}, CapAdd: []string{"chown"}}, "0000000000000001"},
		{"add net_admin", Security{CapAdd: []string{"NET_ADMIN"}}, "00000000a80435fb"},
		{"drop net_raw by its CAP_ name", Security{CapDrop: []string{"CAP_NET_RAW"}}, "00000000a80405fb"},
		{"add all but net_raw", Security{CapAdd: []string{"ALL"}, CapDrop: []string{"NET_RAW"}}, fmt.Sprintf("%016x", ownBounding()&^(1<<unix.CAP_NET_RAW))},
		{"privileged", Security{Privileged: true, CapDrop: []string{"ALL"}}, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := tc.sec.capabilities()
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%08x%08x", m[1], m[0]); got != tc.want {
				t.Errorf("got %s (%v), want %s", got, m.names(), tc.want)
			}
		})
	}
	if _, err := (Security{CapAdd: []string{"NET_FLY"}}).capabilities(); err == nil || err.Error() != `cap_add: unknown capability: "NET_FLY"` {
		t.Errorf("unknown capability: %v", err)
	}
}

func TestSecurityValidate(t *testing.T) {
	var own unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &own); err != nil {
		t.Fatal(err)
	}
	ok := []Security{
		{Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536", "fs.mqueue.msg_max": "20", "net/ipv4/conf/all/forwarding": "0"}},
		{Ulimits: []Ulimit{{Name: "nofile", Soft: 100, Hard: 200}, {Name: "core", Soft: 0, Hard: 0}}},
		{OOMScoreAdj: ptr(500)},
		{GroupAdd: []string{"extra", "4242"}},
	}
	for _, s := range ok {
		if err := s.Validate(false); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	for _, tc := range []struct {
		sec         Security
		hostNetwork bool
		want        string
	}{
		{Security{Sysctls: map[string]string{"kernel.hostname": "x"}}, false, `sysctls.kernel.hostname: sysctl "kernel.hostname" is not allowed`},
		{Security{Sysctls: map[string]string{"vm.swappiness": "1"}}, false, "is not allowed"},
		{Security{Sysctls: map[string]string{"net/../../kernel/core_pattern": "x"}}, false, "not a sysctl name"},
		{Security{Sysctls: map[string]string{"net.ipv4.ip_forward": "1+kernel.core_pattern=x"}}, false, "may not contain '+', '=' or a newline"},
		{Security{Sysctls: map[string]string{"net.ipv4.ip_forward": "1\nkernel.x"}}, false, "may not contain"},
		{Security{Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}, true, "not allowed with network_mode host"},
		{Security{Ulimits: []Ulimit{{Name: "nofile", Soft: 300, Hard: 200}}}, false, "ulimits.nofile: soft limit 300 is above the hard limit 200"},
		{Security{Ulimits: []Ulimit{{Name: "files", Soft: 1, Hard: 1}}}, false, "ulimits.files: unknown limit"},
		{Security{OOMScoreAdj: ptr(1001)}, false, "oom_score_adj: 1001 is out of range"},
		{Security{CapDrop: []string{"CAP_NOPE"}}, false, `cap_drop: unknown capability: "CAP_NOPE"`},
		{Security{GroupAdd: []string{" "}}, false, "group_add: an empty group name"},
		{Security{CapAdd: []string{"CAP_NOT_HELD"}}, false, "unknown capability"},
	} {
		err := tc.sec.Validate(tc.hostNetwork)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.sec, err, tc.want)
		}
	}
	if own.Max != unix.RLIM_INFINITY && !hasCap(unix.CAP_SYS_RESOURCE) {
		err := Security{Ulimits: []Ulimit{{Name: "nofile", Soft: 1, Hard: int64(own.Max) + 1}}}.Validate(false)
		if err == nil || !strings.Contains(err.Error(), "is above berth's own hard limit") {
			t.Errorf("above the hard limit: %v", err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// ownBounding is the bounding set of the test process: "every
// capability" on this host.
func ownBounding() uint64 {
	m := maskOf(allCaps())
	return uint64(m[1])<<32 | uint64(m[0])
}

// TestInitSecurityKeys runs containers with each key and reads what the
// kernel says of the process.
func TestInitSecurityKeys(t *testing.T) {
	status := func(field string) string {
		return `grep '^` + field + `:' /proc/self/status | tr -s '\t' ' '`
	}
	for _, tc := range []struct {
		name string
		sec  Security
		user string
		sh   string
		want string
	}{
		{"no_new_privs off by default as docker", Security{}, "", status("NoNewPrivs"), "NoNewPrivs: 0\n"},
		{"no-new-privileges:true", Security{NoNewPrivileges: true}, "", status("NoNewPrivs"), "NoNewPrivs: 1\n"},
		{"cap_drop ALL", Security{CapDrop: []string{"ALL"}}, "", status("CapEff") + ";" + status("CapBnd"), "CapEff: 0000000000000000\nCapBnd: 0000000000000000\n"},
		{"cap_add NET_ADMIN bites", Security{CapAdd: []string{"NET_ADMIN"}}, "", "ip link set lo down && echo lo-down", "lo-down\n"},
		{"cap_add for a user stays in the bounding set", Security{CapAdd: []string{"NET_ADMIN"}}, "app", status("CapEff") + ";" + status("CapBnd"), "CapEff: 0000000000000000\nCapBnd: 00000000a80435fb\n"},
		{"sysctls in the container's namespaces", Security{Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}}, "",
			"cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni", "1\n1234\n"},
		{"ulimits", Security{Ulimits: []Ulimit{{Name: "nofile", Soft: 100, Hard: 200}}}, "", "ulimit -n; ulimit -Hn", "100\n200\n"},
		{"oom_score_adj", Security{OOMScoreAdj: ptr(500)}, "", "cat /proc/self/oom_score_adj", "500\n"},
		{"group_add by name and number", Security{GroupAdd: []string{"extra", "4242"}}, "app", "id -G", "1000 2000 4242\n"},
		{"privileged", Security{Privileged: true}, "", status("CapEff") + `; grep -c ' /sys sysfs rw' /proc/self/mounts; grep -c ' /proc/keys ' /proc/self/mounts || true`,
			fmt.Sprintf("CapEff: %016x\n1\n0\n", ownBounding())},
		{"systempaths unconfined", Security{SystemPathsUnconfined: true}, "", "grep -c ' /proc/sys proc ro' /proc/self/mounts; grep -c ' /proc/keys ' /proc/self/mounts || true", "0\n0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(t, "sh", "-c", tc.sh)
			s.Security, s.User = tc.sec, tc.user
			if out := testRunOK(t, s); out != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", out, tc.want)
			}
		})
	}
	hostForward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err == nil {
		t.Logf("host net.ipv4.ip_forward stays %s", strings.TrimSpace(string(hostForward)))
	}
}

// TestExecGetsPipesNotHostFiles: a file the caller redirected its output
// to never reaches the container, which could read or truncate it through
// /proc/self/fd; the command writes to a pipe and berth copies.
func TestExecGetsPipesNotHostFiles(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "stdio", "exec sleep 1000")
	run(t, r, spec)
	host, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	host.WriteString("host secret\n")
	in, err := os.Open(host.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	p, err := r.Exec(spec.Name, ExecOptions{
		Args:  []string{"sh", "-c", "for f in 0 1 2; do readlink /proc/self/fd/$f | sed 's/:.*//'; done; : > /proc/self/fd/1; cat"},
		Stdin: in, Stdout: host, Stderr: host,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(); err != nil || code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	data, err := os.ReadFile(host.Name())
	if err != nil {
		t.Fatal(err)
	}
	// The truncation hit berth's pipe, not the file; cat read the file's
	// bytes through berth's relay.
	if want := "host secret\npipe\npipe\npipe\nhost secret\n"; string(data) != want {
		t.Errorf("the host file holds %q, want %q", data, want)
	}
}

func TestExecPrivilegedAndContainerConfinement(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "execpriv", "exec sleep 1000")
	spec.Security = Security{CapDrop: []string{"ALL"}, NoNewPrivileges: true, Ulimits: []Ulimit{{Name: "nofile", Soft: 64, Hard: 128}}}
	run(t, r, spec)
	script := "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '; ulimit -n"
	stdout, _, code := execOutput(t, r, spec.Name, ExecOptions{Args: []string{"sh", "-c", script}})
	if want := "CapEff: 0000000000000000\nNoNewPrivs: 1\n64\n"; code != 0 || stdout != want {
		t.Errorf("exec: exit %d, %q, want %q", code, stdout, want)
	}
	stdout, _, code = execOutput(t, r, spec.Name, ExecOptions{Args: []string{"sh", "-c", script}, Privileged: true})
	if want := fmt.Sprintf("CapEff: %016x\nNoNewPrivs: 1\n64\n", ownBounding()); code != 0 || stdout != want {
		t.Errorf("exec --privileged: exit %d, %q, want %q", code, stdout, want)
	}
}

// TestSeccompCompiledAtCreate: Create compiles the container's filter once
// into its directory, and the start and exec install those bytes (not a
// compile of their own): a filter swapped in on disk is the one that bites.
func TestSeccompCompiledAtCreate(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "seccompfile", "mkdir /tmp/a 2>&1 || true; exec sleep 1000")
	c, err := r.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, seccompFile)); err != nil {
		t.Fatalf("no compiled filter: %v", err)
	}
	noMkdir := Security{SeccompProfile: []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`)}
	if err := writeSeccomp(c.Dir, &noMkdir); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context(), spec.Name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Delete(context.Background(), spec.Name) })
	waitLog(t, r, spec.Name, "stdout mkdir: can't create directory '/tmp/a': Operation not permitted")
	stdout, _, _ := execOutput(t, r, spec.Name, ExecOptions{Args: []string{"sh", "-c", "mkdir /tmp/b || echo refused"}})
	if stdout != "refused\n" {
		t.Errorf("exec: %q, want the stored filter to refuse mkdir", stdout)
	}
	// Privileged and unconfined containers have none.
	for _, sec := range []Security{{Privileged: true}, {SeccompUnconfined: true}} {
		dir := t.TempDir()
		if err := writeSeccomp(dir, &sec); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, seccompFile)); !os.IsNotExist(err) {
			t.Errorf("%+v: a filter was written", sec)
		}
	}
}
