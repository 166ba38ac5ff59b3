package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// execOutput runs args in container name and returns its stdout, stderr and
// exit code.
func execOutput(t *testing.T, r *Runtime, name string, opts ExecOptions) (string, string, int) {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	opts.Stdout, opts.Stderr = outW, errW
	p, err := r.Exec(name, opts)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		t.Fatalf("exec %v: %v", opts.Args, err)
	}
	var stdout, stderr bytes.Buffer
	done := make(chan struct{})
	go func() { stderr.ReadFrom(errR); close(done) }()
	stdout.ReadFrom(outR)
	<-done
	code, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestExecJoinsTheContainer(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "exec", "echo started; exec sleep 1000")
	spec.Env = append(spec.Env, "FROM_SPEC=spec", "OVER=spec")
	spec.Cwd = "/tmp"
	spec.Mounts = []Mount{{Type: MountTmpfs, Target: "/data"}}
	c := run(t, r, spec)
	waitLog(t, r, spec.Name, "stdout started")
	// A file the caller got from its parent without close-on-exec.
	leak, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()
	if _, err := unix.FcntlInt(leak.Fd(), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}

	script := `echo host=$(hostname) pid1=$(cat /proc/1/cmdline | tr '\0' ' ') self=$$ cwd=$(pwd) user=$(id -u) env=$FROM_SPEC,$OVER,$EXTRA
grep -c " /data " /proc/self/mountinfo
ls /proc/self/fd | tr '\n' ' '; echo
grep CapEff /proc/self/status
grep NoNewPrivs /proc/self/status
echo err >&2; exit 7`
	stdout, stderr, code := execOutput(t, r, spec.Name, ExecOptions{Args: []string{"sh", "-c", script}, Env: []string{"OVER=exec", "EXTRA=x"}})
	if code != 7 || stderr != "err\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(stdout, "\n")
	want := "host=exec pid1=sleep 1000 self="
	if !strings.HasPrefix(lines[0], want) || !strings.Contains(lines[0], " cwd=/tmp user=0 env=spec,exec,x") {
		t.Errorf("first line %q, want %q… cwd=/tmp user=0 env=spec,exec,x", lines[0], want)
	}
	// The PID is the container's: small, not the host's.
	if f := strings.Fields(strings.SplitAfter(lines[0], "self=")[1]); len(f) == 0 || len(f[0]) > 3 {
		t.Errorf("the command's PID is not in the container's namespace: %q", lines[0])
	}
	if len(lines) < 5 || lines[1] != "1" || lines[2] != "0 1 2 3 " || lines[3] != "CapEff:\t00000000a80425fb" || lines[4] != "NoNewPrivs:\t0" {
		t.Errorf("mounts, caps, no_new_privs: %q", lines[1:])
	}

	// In the container's cgroup, which lists the sleep and the exec.
	procs := cgroupProcs(t, spec.Name)
	stdout, _, _ = execOutput(t, r, spec.Name, ExecOptions{Args: []string{"sleep", "0"}})
	_ = stdout
	if len(procs) != 1 || procs[0] != c.State.Pid {
		t.Errorf("cgroup holds %v, want only the container's process %d", procs, c.State.Pid)
	}

	// A user and a working directory of the exec's own.
	stdout, _, code = execOutput(t, r, spec.Name, ExecOptions{Args: []string{"sh", "-c", "id -u; pwd; grep CapEff /proc/self/status"}, User: "nobody", Cwd: "/"})
	if code != 0 || stdout != "65534\n/\nCapEff:\t0000000000000000\n" {
		t.Errorf("as nobody: exit %d, %q", code, stdout)
	}
}

// cgroupProcs lists the processes of the container's cgroup (its first
// hierarchy).
func cgroupProcs(t *testing.T, name string) []int {
	t.Helper()
	cg, err := loadCgroup(name)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := cg.pids()
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

func TestExecErrors(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "exec-errors", "exec sleep 1000")
	run(t, r, spec)

	_, err := r.Exec(spec.Name, ExecOptions{Args: []string{"nosuch"}})
	if err == nil || err.Error() != `exec: "nosuch": executable file not found in $PATH` || StartExitCode(err) != 127 {
		t.Errorf("missing command: %v (code %d)", err, StartExitCode(err))
	}
	_, err = r.Exec(spec.Name, ExecOptions{Args: []string{"true"}, User: "nosuchuser"})
	if err == nil || !strings.Contains(err.Error(), "unable to find user nosuchuser") {
		t.Errorf("missing user: %v", err)
	}
	_, err = r.Exec(spec.Name, ExecOptions{Args: []string{"true"}, Cwd: "/nosuch"})
	if err == nil || !strings.Contains(err.Error(), "/nosuch") {
		t.Errorf("missing directory: %v", err)
	}

	// A signal forwarded through the helper ends the command.
	p, err := r.Exec(spec.Name, ExecOptions{Args: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	p.Signal(os.Interrupt)
	if code, err := p.Wait(); err != nil || code != 130 {
		t.Errorf("interrupted exec: %d, %v", code, err)
	}

	if err := r.Stop(t.Context(), spec.Name, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exec(spec.Name, ExecOptions{Args: []string{"true"}}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("exec into a stopped container: %v", err)
	}
}

// TestExecCannotReachTheHostBinary replays CVE-2019-5736: the container
// replaces a program with a `#!/proc/self/exe` script, so that an exec of it
// would run the runtime's own binary inside the container, where another
// process of the container opens it through /proc/PID/exe and writes it.
// The helper that enters the container is not dumpable (the container
// cannot open its /proc files) and runs from a sealed memfd copy of the
// binary (what could be opened cannot be written, and is not the host's).
func TestExecCannotReachTheHostBinary(t *testing.T) {
	r := testRuntime(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	attacker := `printf '#!/proc/self/exe\n' > /evil; chmod +x /evil; echo ready
while :; do
  for d in /proc/[0-9]*; do
    case $(readlink $d/exe 2>/dev/null) in
    /bin/*|/usr/*|'') ;;
    *) echo "$(readlink $d/exe)" >> /found
       echo pwned >> $d/exe && echo wrote >> /found ;;
    esac
  done
done`
	spec := shSpec(t, "cve", attacker)
	run(t, r, spec)
	waitLog(t, r, spec.Name, "stdout ready")
	for range 20 {
		if p, err := r.Exec(spec.Name, ExecOptions{Args: []string{"/evil"}}); err == nil {
			p.Wait()
		}
	}
	found, _, _ := execOutput(t, r, spec.Name, ExecOptions{Args: []string{"sh", "-c", "cat /found 2>/dev/null"}})
	after, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the container wrote the berth binary on the host")
	}
	if found != "" {
		t.Errorf("the container opened a berth process's executable: %q", found)
	}

	// The two guards, seen from the host while an exec runs as nobody.
	p, err := r.Exec(spec.Name, ExecOptions{Args: []string{"sleep", "1000"}, User: "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Wait()
	defer p.Kill()
	helper := p.helper.Process.Pid
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", helper))
	if err != nil || !strings.HasPrefix(link, "/memfd:berth") {
		t.Errorf("the helper runs %q (%v), not a memfd copy", link, err)
	}
	// A process that is not dumpable has its /proc files owned by root,
	// whatever its user: the helper has become nobody.
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/status", helper), &st); err != nil {
		t.Fatal(err)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", helper))
	if !strings.Contains(string(status), "\nUid:\t65534\t") || st.Uid != 0 {
		t.Errorf("the helper is dumpable: /proc/PID/status owned by %d:\n%s", st.Uid, status)
	}
}
