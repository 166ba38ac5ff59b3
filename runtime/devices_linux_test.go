package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// These tests never open a device of the host that has a driver, save
// null, zero, full, random and urandom: a node that must stay closed is
// either refused by the device cgroup before the kernel looks for its
// driver, or is of a major no driver holds (freeMajor), where an open the
// cgroup lets through fails with ENXIO and touches nothing. The nodes they
// make on the host live in their temporary directories.

// ruleStrings shows rules as "allow c 1:3 rwm".
func ruleStrings(rules []specs.LinuxDeviceCgroup) []string {
	var out []string
	for _, r := range rules {
		verb := "deny"
		if r.Allow {
			verb = "allow"
		}
		out = append(out, verb+" "+deviceRuleString(r))
	}
	return out
}

// dockerDefault is docker's list as its containers get it: moby's default
// spec, then runc's AllowedDevices.
var dockerDefault = []string{
	"deny a *:* rwm", "allow c 1:5 rwm", "allow c 1:3 rwm", "allow c 1:9 rwm", "allow c 1:8 rwm",
	"allow c 5:0 rwm", "allow c 5:1 rwm", "deny c 10:229 rwm",
}

var runcAllowed = []string{
	"allow c *:* m", "allow b *:* m", "allow c 1:3 rwm", "allow c 1:8 rwm", "allow c 1:7 rwm",
	"allow c 5:0 rwm", "allow c 1:5 rwm", "allow c 1:9 rwm", "allow c 136:* rwm", "allow c 5:2 rwm",
	"allow c 10:200 rwm",
}

func TestDeviceRules(t *testing.T) {
	cat := func(parts ...[]string) []string { return slices.Concat(parts...) }
	withoutNull := slices.DeleteFunc(slices.Clone(runcAllowed), func(s string) bool { return s == "allow c 1:3 rwm" })
	for _, c := range []struct {
		name string
		sec  Security
		want []string
	}{
		{"default", Security{}, cat(dockerDefault, runcAllowed)},
		{"privileged", Security{Privileged: true, DeviceCgroupRules: []string{"c 1:3 r"}}, []string{"allow a *:* rwm"}},
		{"rules after devices, before runc's", Security{
			Devices:           []Device{{HostPath: "/dev/zero", ContainerPath: "/dev/z", Permissions: "r"}},
			DeviceCgroupRules: []string{"c 10:229 rwm", "b *:* r"},
		}, cat(dockerDefault, []string{"allow c 1:5 r", "allow c 10:229 rwm", "allow b *:* r"}, runcAllowed)},
		// As runc: a device mapped onto a default node's path replaces
		// its rule too.
		{"mapped onto /dev/null", Security{Devices: []Device{{HostPath: "/dev/zero", ContainerPath: "/dev/null"}}},
			cat(dockerDefault, []string{"allow c 1:5 rwm"}, withoutNull)},
	} {
		t.Run(c.name, func(t *testing.T) {
			rules, err := deviceRules(c.sec)
			if err != nil {
				t.Fatal(err)
			}
			if got := ruleStrings(rules); !slices.Equal(got, c.want) {
				t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestDeviceRuleErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sec  Security
		want string
	}{
		{Security{DeviceCgroupRules: []string{"x 1:3 r"}}, `device_cgroup_rules: "x 1:3 r": the type must be a (all), b (block) or c (char)`},
		{Security{DeviceCgroupRules: []string{"c 1:3"}}, `device_cgroup_rules: "c 1:3": not a rule: write TYPE MAJOR:MINOR ACCESS, as "c 1:3 rwm"`},
		{Security{DeviceCgroupRules: []string{"c  1:3 r"}}, `device_cgroup_rules: "c  1:3 r": not a rule: write TYPE MAJOR:MINOR ACCESS, as "c 1:3 rwm"`},
		{Security{DeviceCgroupRules: []string{"c 13 r"}}, `device_cgroup_rules: "c 13 r": not a rule: write TYPE MAJOR:MINOR ACCESS, as "c 1:3 rwm"`},
		{Security{DeviceCgroupRules: []string{"c 1:3 rwx"}}, `device_cgroup_rules: "c 1:3 rwx": the access must be one or more of r, w and m`},
		{Security{DeviceCgroupRules: []string{"c 1:3 rwmr"}}, `device_cgroup_rules: "c 1:3 rwmr": the access must be one or more of r, w and m`},
		{Security{DeviceCgroupRules: []string{"c x:3 r"}}, `device_cgroup_rules: "c x:3 r": major "x" is not a number or *`},
		{Security{DeviceCgroupRules: []string{"c -1:3 r"}}, `device_cgroup_rules: "c -1:3 r": major "-1" is not a number or *`},
		{Security{DeviceCgroupRules: []string{"c 4096:3 r"}}, `device_cgroup_rules: "c 4096:3 r": major 4096 is above the kernel's 4095`},
		{Security{DeviceCgroupRules: []string{"b 1:1048576 r"}}, `device_cgroup_rules: "b 1:1048576 r": minor 1048576 is above the kernel's 1048575`},
		{Security{DeviceCgroupRules: []string{"a 1:3 r"}}, `device_cgroup_rules: "a 1:3 r": type a applies to every device and every access: write "a *:* rwm"`},
		{Security{Devices: []Device{{HostPath: "dev/null"}}}, `devices: "dev/null": the host path must be absolute`},
		{Security{Devices: []Device{{HostPath: "/dev/null", ContainerPath: "null"}}}, `devices: /dev/null: the container path "null" must be absolute, and not /`},
		{Security{Devices: []Device{{HostPath: "/dev/null", ContainerPath: "/"}}}, `devices: /dev/null: the container path "/" must be absolute, and not /`},
		{Security{Devices: []Device{{HostPath: "/dev/null", Permissions: "rx"}}}, `devices: /dev/null: permissions "rx" are not one or more of r, w and m`},
		{Security{Devices: []Device{{HostPath: "/dev/null", Permissions: "rr"}}}, `devices: /dev/null: permissions "rr" are not one or more of r, w and m`},
		{Security{Devices: []Device{{HostPath: file}}}, "devices: " + file + " is not a device node, nor a directory that holds any"},
		{Security{Devices: []Device{{HostPath: empty}}}, "devices: " + empty + " is not a device node, nor a directory that holds any"},
		{Security{Devices: []Device{{HostPath: dir + "/missing"}}}, "devices: " + dir + "/missing: lstat: no such file or directory"},
	} {
		_, err := deviceRules(c.sec)
		if err == nil || err.Error() != c.want {
			t.Errorf("%+v: error %v, want %s", c.sec, err, c.want)
		}
	}
	for _, ok := range []string{"a *:* rwm", "c *:* m", "b 7:* rw", "c 1:3 mwr", "c 136:* rr"} {
		if _, err := parseDeviceRule(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// allows is the v1 controller's decision (devcgroup_legacy_check_permission)
// on the emulated state, for the tests.
func (a deviceAccess) allows(block bool, major, minor int64, access string) bool {
	bits, _ := accessBits(access)
	for _, e := range a.exceptions {
		if e.block != block || (e.major >= 0 && e.major != major) || (e.minor >= 0 && e.minor != minor) {
			continue
		}
		if a.allow && bits&e.access != 0 {
			return false
		}
		if !a.allow && bits&^e.access == 0 {
			return true
		}
	}
	return a.allow
}

func TestEmulateDeviceRules(t *testing.T) {
	parse := func(lines ...string) []specs.LinuxDeviceCgroup {
		var rules []specs.LinuxDeviceCgroup
		for _, l := range lines {
			verb, rule, _ := strings.Cut(l, " ")
			r, err := parseDeviceRule(rule)
			if err != nil {
				t.Fatal(err)
			}
			r.Allow = verb == "allow"
			rules = append(rules, r)
		}
		return rules
	}
	type check struct {
		block        bool
		major, minor int64
		access       string
		want         bool
	}
	for _, c := range []struct {
		name   string
		rules  []string
		checks []check
	}{
		{"docker's default", slices.Concat(dockerDefault, runcAllowed), []check{
			{false, 1, 3, "rw", true}, {false, 1, 7, "w", true}, {false, 136, 4, "rw", true}, {false, 10, 200, "rw", true},
			{true, 7, 0, "m", true}, {true, 7, 0, "r", false}, {false, 4, 1, "m", true}, {false, 4, 1, "r", false},
			{false, 10, 229, "r", false}, {false, 10, 229, "m", true}, {true, 8, 0, "rw", false},
		}},
		{"an r rule allows no open for writing", []string{"deny a *:* rwm", "allow c 60:0 r"}, []check{
			{false, 60, 0, "r", true}, {false, 60, 0, "rw", false}, {false, 60, 0, "w", false}, {false, 60, 1, "r", false},
		}},
		{"a deny narrows the very same exception only", []string{"deny a *:* rwm", "allow c 60:* rwm", "allow c 60:1 rw", "deny c 60:1 w", "deny c 60:* m"}, []check{
			{false, 60, 0, "rw", true}, {false, 60, 0, "m", false}, {false, 60, 1, "r", true}, {false, 60, 1, "w", true},
		}},
		{"allow all, then deny", []string{"allow a *:* rwm", "deny b 60:* w", "allow c 60:0 r"}, []check{
			{true, 60, 1, "r", true}, {true, 60, 1, "rw", false}, {false, 60, 0, "rw", true},
		}},
		{"a later a rule starts over", []string{"deny a *:* rwm", "allow c 60:0 r", "allow a *:* rwm"}, []check{
			{true, 8, 0, "rwm", true},
		}},
	} {
		a, err := emulateDeviceRules(parse(c.rules...))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range c.checks {
			if got := a.allows(k.block, k.major, k.minor, k.access); got != k.want {
				t.Errorf("%s: block %v %d:%d %s: allowed %v, want %v", c.name, k.block, k.major, k.minor, k.access, got, k.want)
			}
		}
	}
}

// TestDeviceRulesAsV1Kernel checks the emulation against the kernel's own:
// the exceptions it lists in devices.list after the rules are written.
func TestDeviceRulesAsV1Kernel(t *testing.T) {
	imagetest.NeedRoot(t)
	h := v1TestHost(t)
	if !slices.ContainsFunc(mustMountedV1(t, h), func(n string) bool { return n == "devices" }) {
		t.Skip("no devices hierarchy mounted")
	}
	for _, sec := range []Security{
		{},
		{Privileged: true},
		{DeviceCgroupRules: []string{"c 1:3 r", "b 7:* rw", "c 60:1 w", "c 60:1 m", "c 10:229 r"}},
		{DeviceCgroupRules: []string{"a *:* rwm", "c 1:3 r"}},
	} {
		rules, err := deviceRules(sec)
		if err != nil {
			t.Fatal(err)
		}
		cg := testCgroup(t, h, "devlist")
		if err := cg.setDevices(rules); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(h.root, "devices", h.group(cg.name), "devices.list"))
		if err != nil {
			t.Fatal(err)
		}
		kernel := strings.Fields(strings.ReplaceAll(string(data), " ", "_"))
		a, err := emulateDeviceRules(rules)
		if err != nil {
			t.Fatal(err)
		}
		var ours []string
		if a.allow {
			ours = append(ours, "a_*:*_rwm") // the kernel lists allow-all so
		}
		for _, e := range a.exceptions {
			typ := map[bool]string{false: "c", true: "b"}[e.block]
			num := func(n int64) string {
				if n < 0 {
					return "*"
				}
				return strconv.FormatInt(n, 10)
			}
			acc := ""
			for _, c := range []struct {
				bit uint32
				s   string
			}{{unix.BPF_DEVCG_ACC_READ, "r"}, {unix.BPF_DEVCG_ACC_WRITE, "w"}, {unix.BPF_DEVCG_ACC_MKNOD, "m"}} {
				if e.access&c.bit != 0 {
					acc += c.s
				}
			}
			ours = append(ours, typ+"_"+num(e.major)+":"+num(e.minor)+"_"+acc)
		}
		slices.Sort(kernel)
		slices.Sort(ours)
		if !slices.Equal(kernel, ours) {
			t.Errorf("%+v: the kernel lists %v, the emulation %v", sec, kernel, ours)
		}
	}
}

func mustMountedV1(t *testing.T, h cgroupHost) []string {
	subs, err := h.mountedV1()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range subs {
		names = append(names, string(s.Name()))
	}
	return names
}

// freeMajor is a device major that no character or block driver of this
// kernel holds, from those devices.txt keeps for local use.
func freeMajor(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/devices")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			used[f[0]] = true
		}
	}
	for _, m := range []int{60, 61, 62, 63, 120, 121, 122, 123, 124, 125, 126, 127} {
		if !used[strconv.Itoa(m)] {
			return m
		}
	}
	t.Fatal("every local-use device major is taken on this host")
	return 0
}

// hostNode makes a device node on the host, removed when the test ends.
func hostNode(t *testing.T, path string, mode uint32, major, minor int) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(path, mode, int(unix.Mkdev(uint32(major), uint32(minor)))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(path, mode&0o7777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	return path
}

// openFns are shell functions that open a file for reading (rd), writing
// (wr) or both (rw) in a subshell, not in the container's process itself
// (which could take a terminal as its controlling one), and print "ok" or
// the error.
const openFns = `res() { if [ -z "$2" ]; then echo "$1: ok"; else echo "$1: ${2##*: }"; fi; }
rd() { res "rd $1" "$( (: <"$1") 2>&1)"; }
wr() { res "wr $1" "$( (: >"$1") 2>&1)"; }
rw() { res "rw $1" "$( (: <>"$1") 2>&1)"; }
`

// runDevScript runs script (with openFns) in a container of spec's security
// until it exits, and returns its output.
func runDevScript(t *testing.T, r *Runtime, sec Security, script string) string {
	t.Helper()
	spec := shSpec(t, "dev", "{\n"+openFns+script+"\n} 2>&1")
	spec.Security = sec
	run(t, r, spec)
	c := waitStatus(t, r, spec.Name, Exited)
	var out strings.Builder
	for _, l := range logLines(t, r, spec.Name) {
		_, text, _ := strings.Cut(l, " ")
		out.WriteString(text + "\n")
	}
	if c.State.ExitCode != 0 {
		t.Fatalf("exit %d: %s\n%s", c.State.ExitCode, c.State.Error, out.String())
	}
	return out.String()
}

func checkOutput(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestDevicesDefault(t *testing.T) {
	r := testRuntime(t)
	m := freeMajor(t)
	out := runDevScript(t, r, Security{}, fmt.Sprintf(`
		mknod /tmp/loop0 b 7 0 && echo mknod b 7 0: ok
		mknod /tmp/tty1 c 4 1 && echo mknod c 4 1: ok
		mknod /tmp/fuse c 10 229 && mknod /tmp/nodrv c %d 0 && mknod /tmp/tun c 10 200
		rd /tmp/loop0; rd /tmp/tty1; rw /tmp/fuse; rd /tmp/nodrv
		for d in null zero full random urandom; do rw /dev/$d; done
		rd /dev/tty
		head -c 8 /dev/urandom | wc -c
		echo x > /dev/full
		rd /tmp/tun | grep -v "Operation not permitted" >/dev/null && echo tun: allowed
		[ -e /dev/core ] || [ -L /dev/core ] || echo no /dev/core`, m))
	checkOutput(t, out, `mknod b 7 0: ok
mknod c 4 1: ok
rd /tmp/loop0: Operation not permitted
rd /tmp/tty1: Operation not permitted
rw /tmp/fuse: Operation not permitted
rd /tmp/nodrv: Operation not permitted
rw /dev/null: ok
rw /dev/zero: ok
rw /dev/full: ok
rw /dev/random: ok
rw /dev/urandom: ok
rd /dev/tty: No such device or address
8
sh: write error: No space left on device
tun: allowed
no /dev/core
`)
}

func TestDevicesExec(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "devexec", "echo started; exec sleep 1000")
	run(t, r, spec)
	waitLog(t, r, spec.Name, "stdout started")
	stdout, stderr, code := execOutput(t, r, spec.Name, ExecOptions{Args: []string{"sh", "-c", openFns + `
		mknod /tmp/loop0 b 7 0 && echo mknod: ok
		rd /tmp/loop0; rw /dev/null`}})
	if want := "mknod: ok\nrd /tmp/loop0: Operation not permitted\nrw /dev/null: ok\n"; code != 0 || stdout != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want stdout %q", code, stdout, stderr, want)
	}
	// exec --privileged gives capabilities, not devices, as docker's.
	stdout, _, _ = execOutput(t, r, spec.Name, ExecOptions{Args: []string{"sh", "-c", openFns + "rd /tmp/loop0"}, Privileged: true})
	if want := "rd /tmp/loop0: Operation not permitted\n"; stdout != want {
		t.Errorf("exec --privileged: %q, want %q", stdout, want)
	}
	// A terminal: ptmx (5:2) and the terminals of /dev/pts (136:*) are
	// allowed.
	p, err := r.Exec(spec.Name, ExecOptions{Args: []string{"sh", "-c", "tty && echo x >/dev/tty && echo tty: ok"}, TTY: true})
	if err != nil {
		t.Fatal(err)
	}
	var term strings.Builder
	io.Copy(&term, p.Console) // ends with EIO once the command is gone
	p.Console.Close()
	if code, err := p.Wait(); err != nil || code != 0 || !strings.Contains(term.String(), "/dev/pts/") || !strings.Contains(term.String(), "tty: ok") {
		t.Errorf("exec -t: exit %d (%v), terminal %q", code, err, term.String())
	}
}

func TestDevicesMapped(t *testing.T) {
	imagetest.NeedRoot(t)
	r := testRuntime(t)
	m := freeMajor(t)
	dir := t.TempDir()
	twin := hostNode(t, filepath.Join(dir, "twin"), unix.S_IFCHR|0o620, 1, 3)
	if err := os.Chown(twin, 0, 5); err != nil {
		t.Fatal(err)
	}
	nodrv := hostNode(t, filepath.Join(dir, "nodrv"), unix.S_IFCHR|0o666, m, 0)
	// A directory of devices, as /dev/snd: every node under it, the rest
	// left out.
	snd := filepath.Join(dir, "snd")
	hostNode(t, filepath.Join(snd, "a"), unix.S_IFCHR|0o666, 1, 5)
	hostNode(t, filepath.Join(snd, "sub", "b"), unix.S_IFBLK|0o640, m, 7)
	if err := os.WriteFile(filepath.Join(snd, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	symlink := filepath.Join(dir, "link")
	if err := os.Symlink(twin, symlink); err != nil {
		t.Fatal(err)
	}
	sec := Security{Devices: []Device{
		{HostPath: twin, ContainerPath: "/dev/twin"},
		{HostPath: nodrv, ContainerPath: "/dev/x", Permissions: "r"},
		{HostPath: snd, ContainerPath: "/dev/snd", Permissions: "rw"},
		{HostPath: symlink}, // at its own path, followed to the node
	}}
	hexm := strconv.FormatInt(int64(m), 16)
	out := runDevScript(t, r, sec, `
		stat -c '%n %F %a %u:%g %t:%T' /dev/twin /dev/x /dev/snd/a /dev/snd/sub/b `+symlink+`
		[ -e /dev/snd/file ] || echo no /dev/snd/file
		rw /dev/twin; rd /dev/x; wr /dev/x; rw /dev/x; rw /dev/snd/a; rd /dev/snd/sub/b
		mknod /tmp/b b `+strconv.Itoa(m)+` 7 && rd /tmp/b
		echo hi > `+symlink+` && echo twin at its host path: ok`)
	checkOutput(t, out, `/dev/twin character special file 620 0:5 1:3
/dev/x character special file 666 0:0 `+hexm+`:0
/dev/snd/a character special file 666 0:0 1:5
/dev/snd/sub/b block special file 640 0:0 `+hexm+`:7
`+symlink+` character special file 620 0:5 1:3
no /dev/snd/file
rw /dev/twin: ok
rd /dev/x: No such device or address
wr /dev/x: Operation not permitted
rw /dev/x: Operation not permitted
rw /dev/snd/a: ok
rd /dev/snd/sub/b: No such device or address
rd /tmp/b: No such device or address
twin at its host path: ok
`)
}

func TestDevicesCgroupRules(t *testing.T) {
	r := testRuntime(t)
	m := strconv.Itoa(freeMajor(t))
	out := runDevScript(t, r, Security{DeviceCgroupRules: []string{"c " + m + ":0 r", "b " + m + ":* rwm", "c 10:229 rwm"}}, `
		mknod /tmp/c c `+m+` 0 && mknod /tmp/c1 c `+m+` 1 && mknod /tmp/b b `+m+` 9 && mknod /tmp/fuse c 10 229
		rd /tmp/c; wr /tmp/c; rd /tmp/c1; rw /tmp/b
		rw /tmp/fuse | grep -v "Operation not permitted" >/dev/null && echo fuse: allowed`)
	checkOutput(t, out, `rd /tmp/c: No such device or address
wr /tmp/c: Operation not permitted
rd /tmp/c1: Operation not permitted
rw /tmp/b: No such device or address
fuse: allowed
`)
}

func TestDevicesPrivileged(t *testing.T) {
	imagetest.NeedRoot(t)
	r := testRuntime(t)
	m := strconv.Itoa(freeMajor(t))
	// A host device beyond docker's default nodes, looked at, not opened.
	all, err := hostDevices("/dev")
	if err != nil {
		t.Fatal(err)
	}
	var host *deviceNode
	for i, n := range all {
		if !slices.Contains([]string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}, n.path) {
			host = &all[i]
			break
		}
	}
	if host == nil {
		t.Fatal("the host's /dev has no device beyond the defaults")
	}
	kind := map[bool]string{false: "character special file", true: "block special file"}[host.block]
	out := runDevScript(t, r, Security{Privileged: true}, `
		mknod /tmp/c c `+m+` 0 && rw /tmp/c
		stat -c '%n %F %a %t:%T' `+host.path+`
		readlink /dev/ptmx
		[ -e /dev/core ] || [ -L /dev/core ] || echo no /dev/core
		[ -e /dev/console ] || echo no /dev/console`)
	checkOutput(t, out, fmt.Sprintf(`rw /tmp/c: No such device or address
%s %s %o %x:%x
pts/ptmx
no /dev/core
no /dev/console
`, host.path, kind, host.perm, host.major, host.minor))
}

func TestDevicesRefusesBadRule(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "devbad", "true")
	spec.Security.DeviceCgroupRules = []string{"c 1:3 rwx"}
	_, err := r.Create(t.Context(), spec)
	if want := `device_cgroup_rules: "c 1:3 rwx": the access must be one or more of r, w and m`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("create: %v, want an error saying %s", err, want)
	}
	if _, err := r.Get(spec.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused container was left: %v", err)
	}
	checkNoCgroup(t, spec.Name)
}

// devOpenEnv has the helper process open files: "MODE PATH" entries (r, w
// or rw) separated by commas.
const devOpenEnv = "BERTH_TEST_DEVICE_OPEN"

// TestDeviceOpenHelper is the process TestDevicesV2Filter moves into its
// cgroup: for every line on stdin it opens the files and prints, for each,
// "MODE PATH: ok" or the errno's name, then "done".
func TestDeviceOpenHelper(t *testing.T) {
	list := os.Getenv(devOpenEnv)
	if list == "" {
		t.Skip("the process of TestDevicesV2Filter")
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		for _, e := range strings.Split(list, ",") {
			mode, path, _ := strings.Cut(e, " ")
			flag := map[string]int{"r": unix.O_RDONLY, "w": unix.O_WRONLY, "rw": unix.O_RDWR}[mode]
			res := "ok"
			if fd, err := unix.Open(path, flag|unix.O_CLOEXEC|unix.O_NOCTTY, 0); err != nil {
				res = unix.ErrnoName(err.(unix.Errno))
			} else {
				unix.Close(fd)
			}
			fmt.Printf("%s: %s\n", e, res)
		}
		fmt.Println("done")
	}
	os.Exit(0)
}

// TestDevicesV2Filter drives the cgroup v2 path (an eBPF program) on this
// host's cgroup2 mount: /sys/fs/cgroup/unified on a hybrid host, where
// berth itself uses v1.
func TestDevicesV2Filter(t *testing.T) {
	imagetest.NeedRoot(t)
	h := v2TestHost(t)
	m := freeMajor(t)
	dir := t.TempDir()
	c := hostNode(t, filepath.Join(dir, "c"), unix.S_IFCHR|0o600, m, 0)
	b := hostNode(t, filepath.Join(dir, "b"), unix.S_IFBLK|0o600, m, 0)
	twin := hostNode(t, filepath.Join(dir, "twin"), unix.S_IFCHR|0o600, 1, 3)
	opens := []string{"r " + c, "rw " + c, "r " + b, "rw /dev/null", "rw " + twin}

	rules := func(sec Security) []specs.LinuxDeviceCgroup {
		rs, err := deviceRules(sec)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	name := uniqueName(t, "devv2")
	cg, err := h.create(name, Resources{}, rules(Security{DeviceCgroupRules: []string{fmt.Sprintf("c %d:0 r", m)}})...)
	if err != nil {
		t.Fatal(err)
	}
	cgDir := filepath.Join(h.root, h.group(name))

	cmd := exec.Command(os.Args[0], "-test.run=^TestDeviceOpenHelper$")
	cmd.Env = append(os.Environ(), devOpenEnv+"="+strings.Join(opens, ","))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if err := cg.add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	round := func(what string, want ...string) {
		t.Helper()
		if _, err := io.WriteString(stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
		var got []string
		for lines.Scan() && lines.Text() != "done" {
			got = append(got, lines.Text())
		}
		var w []string
		for i, o := range opens {
			w = append(w, o+": "+want[i])
		}
		if !slices.Equal(got, w) {
			t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(w, "\n"))
		}
		if n := deviceFilters(t, cgDir); n != 1 {
			t.Errorf("%s: %d device programs attached, want 1", what, n)
		}
	}
	round("an r rule", "ENXIO", "EPERM", "EPERM", "ok", "ok")

	// Taken over with the process in it: the new program replaces the old.
	if _, err := h.create(name, Resources{}, rules(Security{Privileged: true})...); err != nil {
		t.Fatal(err)
	}
	round("privileged, taken over", "ENXIO", "ENXIO", "ENXIO", "ok", "ok")
	if _, err := h.create(name, Resources{}, rules(Security{})...); err != nil {
		t.Fatal(err)
	}
	round("default, taken over", "EPERM", "EPERM", "EPERM", "ok", "ok")
	// Allow by default, with a deny exception: any access it names is
	// refused.
	deny := devRule(false, "c", int64(m), 0, "w")
	if _, err := h.create(name, Resources{}, append(allowAllRules(), deny)...); err != nil {
		t.Fatal(err)
	}
	round("allow all but writes to one device", "ENXIO", "EPERM", "ENXIO", "ok", "ok")
}

// deviceFilters counts the device programs attached to the cgroup dir.
func deviceFilters(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Programs)
}

// withoutDevices is a v1 cgroup of a host that mounts no devices hierarchy.
type withoutDevices struct{ cgroup1.Cgroup }

func (c withoutDevices) Subsystems() []cgroup1.Subsystem {
	return slices.DeleteFunc(slices.Clone(c.Cgroup.Subsystems()), func(s cgroup1.Subsystem) bool { return s.Name() == cgroup1.Devices })
}

// TestDevicesV1NeedsController: a v1 host without the devices hierarchy
// runs no confined container, and says so; a privileged one runs.
func TestDevicesV1NeedsController(t *testing.T) {
	imagetest.NeedRoot(t)
	h := v1TestHost(t)
	cg := testCgroup(t, h, "nodevices")
	without := &containerCgroup{name: cg.name, host: cg.host, v1: withoutDevices{cg.v1}}
	rules, err := deviceRules(Security{})
	if err != nil {
		t.Fatal(err)
	}
	want := "devices: the devices cgroup controller is not mounted at /sys/fs/cgroup/devices: berth does not run a container that could open every device of the host; mount it, or make the service privileged"
	if err := without.setDevices(rules); err == nil || err.Error() != want {
		t.Errorf("default rules without the controller: %v, want %s", err, want)
	}
	if err := without.setDevices(allowAllRules()); err != nil {
		t.Errorf("privileged without the controller: %v", err)
	}
}
