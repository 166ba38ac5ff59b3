package runtime

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// TestMain lets the test binary play berth's hidden roles: newInit and the
// monitor re-execute /proc/self/exe, which in a test is this binary, as
// `… init` or `… monitor DIR`.
func TestMain(m *testing.M) {
	Reexec(Roles{StartDNS: testStartDNS, SetupNetwork: testSetupNetwork})
	os.Exit(m.Run())
}

// result is what one container did.
type result struct {
	stdout, stderr string
	code           int
}

// launched is a container whose init was sent its request.
type launched struct {
	t              *testing.T
	dir            string
	p              *initProcess
	stdout, stderr *os.File
	waited         bool
}

// testLaunch starts spec in a fresh container directory, the way the monitor
// does, and returns once the process runs or with the init's error. The
// calling goroutine stays locked to its thread until wait (Pdeathsig).
func testLaunch(t *testing.T, spec Spec) (*launched, error) {
	t.Helper()
	return testLaunchIn(t, t.TempDir(), spec)
}

func testLaunchIn(t *testing.T, dir string, spec Spec) (*launched, error) {
	t.Helper()
	imagetest.NeedRoot(t)
	checkNoMounts(t, dir)
	for _, l := range spec.Layers {
		checkNoMounts(t, l)
	}
	out := t.TempDir()
	stdout, err := os.Create(filepath.Join(out, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(out, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	goruntime.LockOSThread()
	p, err := newInit("/proc/self/exe", stdout, stderr, spec.newNetwork())
	if err != nil {
		goruntime.UnlockOSThread()
		t.Fatalf("newInit: %v", err)
	}
	l := &launched{t: t, dir: dir, p: p, stdout: stdout, stderr: stderr}
	t.Cleanup(func() {
		if !l.waited {
			p.cmd.Process.Kill()
			p.wait()
		}
		stdout.Close()
		stderr.Close()
	})
	return l, p.run(initRequest{Spec: spec, Dir: dir})
}

func (l *launched) wait() result {
	l.t.Helper()
	code, err := l.p.wait()
	l.waited = true
	goruntime.UnlockOSThread()
	if err != nil {
		l.t.Fatalf("wait: %v", err)
	}
	read := func(f *os.File) string {
		data, err := os.ReadFile(f.Name())
		if err != nil {
			l.t.Fatal(err)
		}
		return string(data)
	}
	return result{stdout: read(l.stdout), stderr: read(l.stderr), code: code}
}

// testRun runs spec to its end and fails the test if it could not start.
func testRun(t *testing.T, spec Spec) result {
	t.Helper()
	l, err := testLaunch(t, spec)
	if err != nil {
		l.wait()
		t.Fatalf("run: %v", err)
	}
	return l.wait()
}

// testRunOK is testRun for a command that must exit 0.
func testRunOK(t *testing.T, spec Spec) string {
	t.Helper()
	r := testRun(t, spec)
	if r.code != 0 {
		t.Fatalf("%q exited %d; stdout:\n%s\nstderr:\n%s", spec.Args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// checkNoMounts fails the test if, at its end, anything is mounted on the
// host under path: all of a container's mounts must live and die in its
// own mount namespace.
func checkNoMounts(t *testing.T, path string) {
	t.Cleanup(func() {
		data, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, path) {
				t.Errorf("left mounted on the host: %s", line)
			}
		}
	})
}

// spec is a container of the busybox image running args.
func spec(t *testing.T, args ...string) Spec {
	t.Helper()
	imagetest.NeedRoot(t)
	return Spec{
		Name:     "test-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")),
		Hostname: "testbox",
		Layers:   []string{imagetest.Rootfs(t)},
		Args:     args,
	}
}

func TestInitIsPID1(t *testing.T) {
	if out := testRunOK(t, spec(t, "sh", "-c", "echo $$")); out != "1\n" {
		t.Errorf("$$ = %q, want 1", out)
	}
}

func TestInitSeesOnlyItsProcesses(t *testing.T) {
	out := testRunOK(t, spec(t, "ls", "/proc"))
	var pids []string
	for _, f := range strings.Fields(out) {
		if strings.Trim(f, "0123456789") == "" {
			pids = append(pids, f)
		}
	}
	if len(pids) != 1 || pids[0] != "1" {
		t.Errorf("processes in the container: %v, want only 1", pids)
	}
}

func TestInitHostnameAndEtcFiles(t *testing.T) {
	s := spec(t, "sh", "-c", "hostname; cat /etc/hostname /etc/hosts /etc/resolv.conf")
	s.Hostname = "web-1"
	s.Hosts = []string{"10.0.0.2\tdb"}
	out := testRunOK(t, s)
	lines := strings.Split(out, "\n")
	if lines[0] != "web-1" || lines[1] != "web-1" {
		t.Errorf("hostname, /etc/hostname = %q, %q; want web-1", lines[0], lines[1])
	}
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "::1\tlocalhost ip6-localhost ip6-loopback\n", "10.0.0.2\tdb\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("/etc/hosts lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "nameserver ") || strings.Contains(out, "nameserver 127.") {
		t.Errorf("resolv.conf has no usable nameserver:\n%s", out)
	}
}

func TestFilterResolvConf(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		found    bool
	}{
		{"nameserver 127.0.0.53\noptions edns0\nsearch lan\n", "options edns0\nsearch lan\n", false},
		{"nameserver ::1\nnameserver 10.1.1.1\n", "nameserver 10.1.1.1\n", true},
		{"# c\nnameserver fe80::1%eth0\n", "# c\nnameserver fe80::1%eth0\n", true},
	} {
		out, found := filterResolvConf([]byte(tc.in))
		if string(out) != tc.want || found != tc.found {
			t.Errorf("filterResolvConf(%q) = %q, %v; want %q, %v", tc.in, out, found, tc.want, tc.found)
		}
	}
}

func TestInitLoopbackUp(t *testing.T) {
	out := testRunOK(t, spec(t, "sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags"))
	if out != "lo\n0x9\n" { // IFF_UP|IFF_LOOPBACK, and no other interface
		t.Errorf("interfaces and lo's flags: %q, want lo up alone", out)
	}
}

func TestInitEnv(t *testing.T) {
	s := spec(t, "env")
	s.Env = []string{"FOO=bar baz", "HOSTNAME=testbox"}
	env := strings.Split(strings.TrimSpace(testRunOK(t, s)), "\n")
	want := []string{"FOO=bar baz", "HOSTNAME=testbox", "PATH=" + defaultPath, "HOME=/root"}
	if strings.Join(env, "\n") != strings.Join(want, "\n") {
		t.Errorf("env = %q, want %q", env, want)
	}

	s = spec(t, "env")
	s.Env = []string{"PATH=/bin", "HOME=/x"}
	if out := testRunOK(t, s); out != "PATH=/bin\nHOME=/x\n" {
		t.Errorf("env = %q: PATH and HOME given must be kept", out)
	}
}

func TestInitUser(t *testing.T) {
	for _, tc := range []struct{ user, want string }{
		// busybox's id lists getgroups(2) only: the supplementary groups.
		{"", "uid=0(root) gid=0(root) HOME=/root"},
		{"app", "uid=1000(app) gid=1000(app) groups=2000(extra) HOME=/home/app"},
		{"1000", "uid=1000(app) gid=1000(app) groups=2000(extra) HOME=/home/app"},
		// An explicit group drops the supplementary ones, as docker.
		{"1000:2000", "uid=1000(app) gid=2000(extra) HOME=/home/app"},
		{"app:extra", "uid=1000(app) gid=2000(extra) HOME=/home/app"},
		{"4242:4243", "uid=4242 gid=4243 HOME=/"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			s := spec(t, "sh", "-c", `echo "$(id) HOME=$HOME"`)
			s.User = tc.user
			if out := strings.TrimSpace(testRunOK(t, s)); out != tc.want {
				t.Errorf("user %q: %q, want %q", tc.user, out, tc.want)
			}
		})
	}
}

func TestInitUnknownUser(t *testing.T) {
	s := spec(t, "id")
	s.User = "nosuchuser"
	l, err := testLaunch(t, s)
	const want = "unable to find user nosuchuser: no matching entries in passwd file"
	if err == nil || err.Error() != want {
		t.Errorf("run: %v, want %q", err, want)
	}
	if r := l.wait(); r.code != 1 {
		t.Errorf("init exited %d, want 1", r.code)
	}
}

func TestInitCwd(t *testing.T) {
	s := spec(t, "sh", "-c", "pwd; stat -c %u:%g /srv/app /srv/app/data /tmp; touch ok")
	s.User = "app"
	s.Cwd = "/srv/app/data"
	out := testRunOK(t, s)
	// Created directories belong to the user; /tmp existed and keeps root.
	if want := "/srv/app/data\n1000:1000\n1000:1000\n0:0\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}

	s = spec(t, "pwd")
	if out := testRunOK(t, s); out != "/\n" {
		t.Errorf("default cwd %q, want /", out)
	}
}

func TestInitRootIsPrivate(t *testing.T) {
	layer := imagetest.Rootfs(t)
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "secret"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := spec(t, "sh", "-c", "echo one > /written; rm /bin/ls; test -e "+hostDir+"/secret || echo hidden")
	s.Layers = []string{layer}
	dir1 := t.TempDir()
	l, err := testLaunchIn(t, dir1, s)
	if err != nil {
		t.Fatal(err)
	}
	if r := l.wait(); r.code != 0 || r.stdout != "hidden\n" {
		t.Fatalf("first container: code %d, stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(layer, "written")); err == nil {
		t.Error("a file written in the container appeared in the image layer")
	}
	if _, err := os.Lstat(filepath.Join(layer, "bin/ls")); err != nil {
		t.Error("a file removed in the container vanished from the image layer")
	}
	if data, err := os.ReadFile(filepath.Join(dir1, upperDir, "written")); err != nil || string(data) != "one\n" {
		t.Errorf("upper dir holds %q, %v; want the container's file", data, err)
	}

	s.Args = []string{"sh", "-c", "cat /written; test -e /bin/ls && echo ls-there"}
	r := testRun(t, s)
	if r.stdout != "ls-there\n" || !strings.Contains(r.stderr, "/written") {
		t.Errorf("second container of the same layer sees the first one's changes: stdout %q stderr %q", r.stdout, r.stderr)
	}
}

func TestInitNoLayers(t *testing.T) {
	s := spec(t, "sh")
	s.Layers = nil
	l, err := testLaunch(t, s)
	const want = `exec: "sh": executable file not found in $PATH`
	if err == nil || err.Error() != want {
		t.Errorf("run: %v, want %q", err, want)
	}
	l.wait()
}

func TestInitManyLayers(t *testing.T) {
	// 60 layers of long names need more than a page of mount options:
	// the init must fall back to relative paths.
	base := t.TempDir()
	layers := []string{imagetest.Rootfs(t)}
	for i := range 60 {
		d := filepath.Join(base, fmt.Sprintf("layer-%02d-%s", i, strings.Repeat("x", 40)))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%02d", i)), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		layers = append(layers, d)
	}
	// Two layers write the same name: the highest (last) must win.
	if err := os.WriteFile(filepath.Join(layers[1], "same"), []byte("low"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(layers[60], "same"), []byte("high"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := spec(t, "sh", "-c", "cat /f00 /f59 /same")
	s.Layers = layers
	if out := testRunOK(t, s); out != "059high" {
		t.Errorf("got %q, want 059high", out)
	}
}

func TestInitDev(t *testing.T) {
	out := testRunOK(t, spec(t, "sh", "-c", mountsFn+`
		ls /dev | tr '\n' ' '; echo
		stat -c '%n %F %a %t:%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty
		for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done
		echo x > /dev/null && head -c 3 /dev/zero | wc -c
		echo shm > /dev/shm/x && cat /dev/shm/x
		mounts | grep '^/dev'
	`))
	want := `fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero 
/dev/null character special file 666 1:3
/dev/zero character special file 666 1:5
/dev/full character special file 666 1:7
/dev/random character special file 666 1:8
/dev/urandom character special file 666 1:9
/dev/tty character special file 666 5:0
pts/ptmx
/proc/self/fd
/proc/self/fd/0
/proc/self/fd/1
/proc/self/fd/2
3
shm
/dev rw,nosuid tmpfs rw,size=65536k,mode=755
/dev/pts rw,nosuid,noexec,relatime devpts rw,mode=620,ptmxmode=666
/dev/shm rw,nosuid,nodev,noexec,relatime tmpfs rw,size=65536k
/dev/mqueue rw,nosuid,nodev,noexec,relatime mqueue rw
`
	if out != want {
		t.Errorf("/dev:\n%s\nwant:\n%s", out, want)
	}
}

func TestInitDevptsTTYGroup(t *testing.T) {
	// With a tty group (5) in the image, new terminals belong to it.
	s := spec(t, "sh", "-c", mountsFn+"mounts | grep ^/dev/pts")
	group := filepath.Join(s.Layers[0], "etc/group")
	if err := os.WriteFile(group, []byte(imagetest.Group+"tty:x:5:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, want := testRunOK(t, s), "/dev/pts rw,nosuid,noexec,relatime devpts rw,gid=5,mode=620,ptmxmode=666\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestInitMaskedAndReadonly(t *testing.T) {
	// docker's masked files that this kernel has must read empty (this
	// kernel may lack /proc/kcore, for one); masked directories are empty.
	files := []string{"/proc/kcore", "/proc/interrupts", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"}
	var wantMasked strings.Builder
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			fmt.Fprintf(&wantMasked, "%s 0\n", f)
		}
	}
	out := testRunOK(t, spec(t, "sh", "-c", mountsFn+`
		for f in `+strings.Join(files, " ")+`; do [ -e $f ] && echo $f $(wc -c < $f); done
		ls /sys/firmware /proc/acpi | grep -v : | grep . ; echo dirs-empty
		echo x 2>/dev/null > /proc/sys/kernel/hostname || echo proc-sys-ro
		echo x 2>/dev/null > /proc/sysrq-trigger || echo sysrq-ro
		mkdir /sys/x 2>/dev/null || echo sys-ro
		mounts | grep -E '^/(sys|proc)(/sys)? '
	`))
	want := wantMasked.String() + "dirs-empty\nproc-sys-ro\nsysrq-ro\nsys-ro\n" +
		"/proc rw,nosuid,nodev,noexec,relatime proc rw\n" +
		"/sys ro,nosuid,nodev,noexec,relatime sysfs ro\n" +
		"/proc/sys ro,nosuid,nodev,noexec,relatime proc rw\n"
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

// mountsFn is a shell function printing each mount of the container as
// "target options fstype superoptions", from /proc/self/mountinfo, whose
// optional fields end at "-".
const mountsFn = `mounts() { awk '{ for (i = 7; $i != "-"; i++) ; print $5, $6, $(i+1), $(i+3) }' /proc/self/mountinfo; }
`

// capStatus reads the capability lines and NoNewPrivs of /proc/self/status.
const capStatus = `grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status | tr -s '\t' ' '`

func TestInitCapabilities(t *testing.T) {
	// docker's 14: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
	// NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
	const docker = "00000000a80425fb"
	if m := maskOf(defaultCaps()); fmt.Sprintf("%08x%08x", m[1], m[0]) != docker {
		t.Fatalf("defaultCaps = %08x%08x, want %s", m[1], m[0], docker)
	}
	for _, tc := range []struct{ user, eff string }{{"", docker}, {"app", "0000000000000000"}, {"0:1000", docker}} {
		t.Run("user="+tc.user, func(t *testing.T) {
			s := spec(t, "sh", "-c", capStatus)
			s.User = tc.user
			out := testRunOK(t, s)
			// docker leaves no_new_privs off unless asked
			// (security_opt no-new-privileges).
			want := fmt.Sprintf("CapInh: 0000000000000000\nCapPrm: %s\nCapEff: %s\nCapBnd: %s\nCapAmb: 0000000000000000\nNoNewPrivs: 0\n",
				tc.eff, tc.eff, docker)
			if out != want {
				t.Errorf("got:\n%s\nwant:\n%s", out, want)
			}
		})
	}
}

func TestInitCapabilitiesBite(t *testing.T) {
	// Without CAP_SYS_ADMIN, root in the container cannot mount; without
	// CAP_NET_ADMIN it cannot configure interfaces.
	out := testRunOK(t, spec(t, "sh", "-c", "mount -t tmpfs t /mnt 2>/dev/null || echo no-mount; ip link set lo down 2>/dev/null || echo no-netadmin"))
	if out != "no-mount\nno-netadmin\n" {
		t.Errorf("got %q", out)
	}
}

func TestInitCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch", "arg"}, `exec: "nosuch": executable file not found in $PATH`},
		{[]string{"/nosuch"}, `exec: "/nosuch": stat /nosuch: no such file or directory`},
		{[]string{"/etc/passwd"}, `exec: "/etc/passwd": permission denied`},
		{nil, "no command specified"},
	} {
		t.Run(fmt.Sprint(tc.args), func(t *testing.T) {
			l, err := testLaunch(t, spec(t, tc.args...))
			if err == nil || err.Error() != tc.want {
				t.Errorf("run: %v, want %q", err, tc.want)
			}
			if _, ok := err.(startError); !ok {
				t.Errorf("run: %T, want a startError", err)
			}
			if r := l.wait(); r.code != 1 {
				t.Errorf("init exited %d, want 1", r.code)
			}
		})
	}
}

func TestInitExecFormatError(t *testing.T) {
	s := spec(t, "/notabinary")
	if err := os.WriteFile(filepath.Join(s.Layers[0], "notabinary"), []byte("just text\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := testLaunch(t, s)
	if want := "exec /notabinary: exec format error"; err == nil || err.Error() != want {
		t.Errorf("run: %v, want %q", err, want)
	}
	l.wait()
}

func TestInitExitCodes(t *testing.T) {
	if r := testRun(t, spec(t, "sh", "-c", "exit 3")); r.code != 3 {
		t.Errorf("exit 3: code %d", r.code)
	}
	l, err := testLaunch(t, spec(t, "sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	// From the host: inside its namespace, PID 1 ignores even SIGKILL.
	if err := syscall.Kill(l.p.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if r := l.wait(); r.code != 137 {
		t.Errorf("SIGKILL: code %d, want 137", r.code)
	}
}

func TestInitStdio(t *testing.T) {
	r := testRun(t, spec(t, "sh", "-c", "echo out; echo err >&2; cat; ls /proc/self/fd"))
	// stdin is /dev/null (cat ends at once); no fd of berth's leaks in:
	// ls sees 0, 1, 2 and the directory it reads.
	if r.code != 0 || r.stdout != "out\n0\n1\n2\n3\n" || r.stderr != "err\n" {
		t.Errorf("code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestInitReadonlyRootfs(t *testing.T) {
	s := spec(t, "sh", "-c", "touch /x 2>/dev/null || echo root-ro; echo ok > /data/f && cat /data/f; hostname > /etc/hostname && echo etc-rw; pwd")
	s.ReadonlyRootfs = true
	s.Cwd = "/new/dir" // created even in a read-only root, as docker does
	s.Mounts = []Mount{{Type: MountTmpfs, Target: "/data"}}
	if out := testRunOK(t, s); out != "root-ro\nok\netc-rw\n/new/dir\n" {
		t.Errorf("got %q", out)
	}
}

func TestInitBindMounts(t *testing.T) {
	rw, ro := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "in-ro"), []byte("ro data"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "config.txt")
	if err := os.WriteFile(file, []byte("config"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := spec(t, "sh", "-c", mountsFn+`
		echo hello > /rw/new && echo rw-ok
		cat /ro/in-ro; echo
		touch /ro/x 2>/dev/null || echo ro-refused
		cat /etc/app/config.txt; echo
		mkdir /deep/er/tmp/sub && echo tmpfs-ok
		mounts | grep ^/deep
	`)
	s.Mounts = []Mount{
		{Type: MountBind, Source: rw, Target: "/rw"},
		{Type: MountBind, Source: ro, Target: "/ro", ReadOnly: true},
		{Type: MountBind, Source: file, Target: "/etc/app/config.txt", ReadOnly: true},
		{Type: MountTmpfs, Target: "/deep/er/tmp", TmpfsSize: 1 << 20, TmpfsMode: 0o750},
	}
	out := testRunOK(t, s)
	want := "rw-ok\nro data\nro-refused\nconfig\ntmpfs-ok\n/deep/er/tmp rw,nosuid,nodev,relatime tmpfs rw,size=1024k,mode=750\n"
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	if data, err := os.ReadFile(filepath.Join(rw, "new")); err != nil || string(data) != "hello\n" {
		t.Errorf("file written in the rw bind: %q, %v", data, err)
	}
	if entries, _ := os.ReadDir(ro); len(entries) != 1 {
		t.Errorf("read-only bind source changed: %v", entries)
	}
}

func TestInitCopyUp(t *testing.T) {
	s := spec(t, "sh", "-c", "echo more >> /var/data/a; ls -ln /var/data | grep -v ^total | tr -s ' ' | cut -d' ' -f1,3,4,9-")
	img := filepath.Join(s.Layers[0], "var/data")
	if err := os.MkdirAll(filepath.Join(img, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(img, "a"), []byte("from image\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(img, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(img, "a"), filepath.Join(img, "hard")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "sub", "a"} {
		if err := os.Lchown(filepath.Join(img, p), 1000, 2000); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(img, 0o711); err != nil {
		t.Fatal(err)
	}

	vol := t.TempDir()
	s.Mounts = []Mount{{Type: MountBind, Source: vol, Target: "/var/data", CopyUp: true}}
	out := testRunOK(t, s)
	want := "-rw-r----- 1000 2000 a\n-rw-r----- 1000 2000 hard\nlrwxrwxrwx 0 0 link -> /etc/passwd\ndrwxr-x--- 1000 2000 sub\n"
	if out != want {
		t.Errorf("volume after copy-up:\n%s\nwant:\n%s", out, want)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(vol, &st); err != nil || st.Uid != 1000 || st.Gid != 2000 || st.Mode&0o7777 != 0o711 {
		t.Errorf("volume root: uid %d gid %d mode %o, want the image dir's 1000 2000 711", st.Uid, st.Gid, st.Mode&0o7777)
	}
	var a, h syscall.Stat_t
	syscall.Stat(filepath.Join(vol, "a"), &a)
	syscall.Stat(filepath.Join(vol, "hard"), &h)
	if a.Ino != h.Ino {
		t.Error("hard link copied as two files")
	}
	if data, _ := os.ReadFile(filepath.Join(vol, "a")); string(data) != "from image\nmore\n" {
		t.Errorf("volume file: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(img, "a")); string(data) != "from image\n" {
		t.Errorf("image file changed: %q", data)
	}

	// A volume that holds something is not filled again.
	s.Args = []string{"ls", "/var/data"}
	os.Remove(filepath.Join(vol, "hard"))
	if out := testRunOK(t, s); out != "a\nlink\nsub\n" {
		t.Errorf("second start: %q, want the volume as it was", out)
	}
}

func TestInitMountTargetSymlinkStaysInRoot(t *testing.T) {
	// CVE-2021-30465 and friends: an image may hold a symlink where a
	// volume goes, pointing at a host path. A mount, and any directory it
	// needs, must land inside the root: the symlinks resolve as if the root
	// were "/". Followed on the host instead, they would create hostDir/sub
	// and hostDir/t and mount over the host's hostDir.
	hostDir := t.TempDir()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "marker"), []byte("volume"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := spec(t, "sh", "-c", "cat /evil/sub/marker; echo; ls -a /rel/t; ls "+hostDir)
	layer := s.Layers[0]
	if err := os.MkdirAll(filepath.Join(layer, hostDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostDir, filepath.Join(layer, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(strings.Repeat("../", 20)+hostDir[1:], filepath.Join(layer, "rel")); err != nil {
		t.Fatal(err)
	}
	s.Mounts = []Mount{
		{Type: MountBind, Source: src, Target: "/evil/sub"},
		{Type: MountTmpfs, Target: "/rel/t"},
	}
	out := testRunOK(t, s)
	if want := "volume\n.\n..\nsub\nt\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if entries, _ := os.ReadDir(hostDir); len(entries) != 0 {
		t.Errorf("the host dir the image's symlink points at was written: %v", entries)
	}

	// A symlink to a path the root does not have is not followed to create
	// it: the start fails (as with runc), and the host is untouched.
	s = spec(t, "true")
	if err := os.Symlink(hostDir, filepath.Join(s.Layers[0], "evil")); err != nil {
		t.Fatal(err)
	}
	s.Mounts = []Mount{{Type: MountBind, Source: src, Target: "/evil/sub"}}
	l, err := testLaunch(t, s)
	if err == nil || !strings.HasPrefix(err.Error(), "create mount target /evil/sub: ") {
		t.Errorf("run: %v, want a failure to create /evil/sub", err)
	}
	l.wait()
	if entries, _ := os.ReadDir(hostDir); len(entries) != 0 {
		t.Errorf("the host dir the image's symlink points at was written: %v", entries)
	}
}

func TestInitSharedHostMountsDoNotLeak(t *testing.T) {
	// With / shared (as systemd makes it), a mount in a copy of a shared
	// peer group would appear on the host unless the init makes / private.
	imagetest.NeedRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	if err := syscall.Mount("", dir, "", syscall.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	s := spec(t, "true")
	ctr := filepath.Join(dir, "ctr")
	if err := os.Mkdir(ctr, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := testLaunchIn(t, ctr, s)
	if err != nil {
		t.Fatal(err)
	}
	if r := l.wait(); r.code != 0 {
		t.Fatalf("code %d: %s", r.code, r.stderr)
	}
	data, _ := os.ReadFile("/proc/self/mountinfo")
	if n := bytes.Count(data, []byte(dir)); n != 1 {
		t.Errorf("%d mounts under %s on the host, want only the test's tmpfs:\n%s", n, dir, data)
	}
}
