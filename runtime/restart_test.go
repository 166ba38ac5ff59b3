package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRestartPolicyDecides(t *testing.T) {
	for _, tc := range []struct {
		policy        RestartPolicy
		code, count   int
		stoppedByUser bool
		want          bool
	}{
		{RestartPolicy{}, 1, 0, false, false},
		{RestartPolicy{Name: RestartNo}, 1, 0, false, false},
		{RestartPolicy{Name: "nonsense"}, 1, 0, false, false},
		{RestartPolicy{Name: RestartAlways}, 0, 0, false, true},
		{RestartPolicy{Name: RestartAlways}, 1, 100, false, true},
		// docker: "always" does not heed the user's kill, only a stop
		// (which calls the policy off before it is asked).
		{RestartPolicy{Name: RestartAlways}, 137, 0, true, true},
		{RestartPolicy{Name: RestartUnlessStopped}, 0, 7, false, true},
		{RestartPolicy{Name: RestartUnlessStopped}, 137, 0, true, false},
		{RestartPolicy{Name: RestartOnFailure}, 0, 0, false, false},
		{RestartPolicy{Name: RestartOnFailure}, 3, 1000, false, true},
		{RestartPolicy{Name: RestartOnFailure}, 3, 0, true, true},
		{RestartPolicy{Name: RestartOnFailure, MaxRetries: 2}, 3, 1, false, true},
		{RestartPolicy{Name: RestartOnFailure, MaxRetries: 2}, 3, 2, false, false},
		{RestartPolicy{Name: RestartOnFailure, MaxRetries: 2}, 0, 0, false, false},
	} {
		if got := tc.policy.restarts(tc.code, tc.count, tc.stoppedByUser); got != tc.want {
			t.Errorf("%s: exit %d after %d restarts (stopped by user: %v): restart %v, want %v",
				tc.policy, tc.code, tc.count, tc.stoppedByUser, got, tc.want)
		}
	}
}

func TestRestartBackoff(t *testing.T) {
	var b backoff
	var got []string
	for range 12 {
		got = append(got, b.next(time.Second).String())
	}
	want := "100ms 200ms 400ms 800ms 1.6s 3.2s 6.4s 12.8s 25.6s 51.2s 1m0s 1m0s"
	if strings.Join(got, " ") != want {
		t.Errorf("delays %s, want %s", strings.Join(got, " "), want)
	}
	// A run of 10 s or more begins again at the shortest delay.
	if d := b.next(restartResetAfter); d != restartDelayMin {
		t.Errorf("after a long run: %v, want %v", d, restartDelayMin)
	}
	if d := b.next(0); d != 2*restartDelayMin {
		t.Errorf("then %v, want %v", d, 2*restartDelayMin)
	}
}

func TestKillCancelsRestart(t *testing.T) {
	for _, tc := range []struct {
		stopSignal string
		sig        syscall.Signal
		want       bool
	}{
		{"", syscall.SIGKILL, true},
		{"", syscall.SIGHUP, true}, // docker: no stop signal set, any kill is a stop
		{"SIGINT", syscall.SIGKILL, true},
		{"SIGINT", syscall.SIGINT, true},
		{"SIGINT", syscall.SIGTERM, false},
		{"USR1", syscall.SIGHUP, false},
		{"bogus", syscall.SIGHUP, true},
	} {
		if got := killCancelsRestart(Spec{StopSignal: tc.stopSignal}, tc.sig); got != tc.want {
			t.Errorf("stop signal %q, kill %v: cancels %v, want %v", tc.stopSignal, tc.sig, got, tc.want)
		}
	}
}

// restartSpec is a busybox container running script under policy, with a
// host folder (returned) bind-mounted on /data, where the scripts count
// their runs: one line each in /data/runs.
func restartSpec(t *testing.T, base string, policy RestartPolicy, script string) (Spec, string) {
	spec := shSpec(t, base, script)
	spec.Restart = policy
	data := t.TempDir()
	spec.Mounts = []Mount{{Type: MountBind, Source: data, Target: "/data"}}
	return spec, data
}

// countRuns is the number of lines in data/runs.
func countRuns(t *testing.T, data string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "runs"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func getState(t *testing.T, r *Runtime, name string) State {
	t.Helper()
	c, err := r.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return c.State
}

// waitMonitorGone waits until the monitor of st has exited: after that,
// nothing can restart the container.
func waitMonitorGone(t *testing.T, st State) {
	t.Helper()
	waitFor(t, fmt.Sprintf("monitor %d to exit", st.MonitorPid), func() bool {
		return !processAlive(st.MonitorPid, st.MonitorStart)
	})
}

// checkStaysExited checks that the container is exited for good: its
// monitor (from st, a state it had while it ran) is gone and the runs
// counted in data are still want.
func checkStaysExited(t *testing.T, r *Runtime, name string, st State, data string, want int) State {
	t.Helper()
	waitMonitorGone(t, st)
	final := getState(t, r, name)
	if final.Status != Exited {
		t.Errorf("status %s once the monitor is gone, want exited", final.Status)
	}
	if n := countRuns(t, data); n != want {
		t.Errorf("%d runs, want %d", n, want)
	}
	return final
}

func monitorLogText(t *testing.T, r *Runtime, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, name, monitorLog))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRestartAlways: "always" restarts a process that exits 0, in the same
// monitor, with the same files and log, and counts the restarts.
func TestRestartAlways(t *testing.T) {
	t.Parallel()
	r := testRuntime(t)
	spec, data := restartSpec(t, "always", RestartPolicy{Name: RestartAlways},
		`echo run >> /data/runs; echo "run $(wc -l < /data/runs), kept $(cat /kept 2>/dev/null | wc -l)"; echo x >> /kept; sleep 0.2`)
	first := run(t, r, spec).State
	if first.Status != Running || first.MonitorPid == 0 {
		t.Fatalf("state after start %+v", first)
	}
	var st State
	waitFor(t, "three runs, and a restarted process running", func() bool {
		st = getState(t, r, spec.Name)
		if st.MonitorPid != first.MonitorPid && st.Status != Exited {
			t.Fatalf("monitor %d, then %d: the monitor must stay the same process", first.MonitorPid, st.MonitorPid)
		}
		switch st.Status {
		case Running, Restarting:
		default:
			t.Fatalf("status %s in a restart loop: %+v", st.Status, st)
		}
		return countRuns(t, data) >= 3 && st.RestartCount >= 2 && st.Status == Running
	})
	if st.Pid == first.Pid || st.Pid == 0 || st.ExitCode != 0 || st.StartedAt.Before(first.StartedAt) {
		t.Errorf("restarted state %+v, first %+v", st, first)
	}
	// The upper dir persists (/kept grows), and the log has every run's line.
	waitLog(t, r, spec.Name, "stdout run 3, kept 2")
	log := strings.Join(logLines(t, r, spec.Name), "|")
	for _, want := range []string{"stdout run 1, kept 0|", "stdout run 2, kept 1|", "stdout run 3, kept 2|"} {
		if !strings.Contains(log+"|", want) {
			t.Errorf("log %q lacks %q", log, want)
		}
	}
	if ml := monitorLogText(t, r, spec.Name); !strings.Contains(ml, "exited with code 0") || !strings.Contains(ml, "restart 2 (policy always) in 200ms") {
		t.Errorf("monitor.log:\n%s", ml)
	}

	if err := r.Stop(context.Background(), spec.Name, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	stopped := getState(t, r, spec.Name)
	if stopped.Status != Exited || stopped.RestartCount < 2 {
		t.Errorf("state after stop %+v", stopped)
	}
	checkStaysExited(t, r, spec.Name, st, data, countRuns(t, data))
}

// TestRestartOnFailureGivesUp: on-failure:2 restarts a failing process
// twice, then leaves it exited with its code.
func TestRestartOnFailureGivesUp(t *testing.T) {
	t.Parallel()
	r := testRuntime(t)
	spec, data := restartSpec(t, "onfail", RestartPolicy{Name: RestartOnFailure, MaxRetries: 2},
		"echo run >> /data/runs; sleep 0.2; exit 3")
	first := run(t, r, spec).State
	waitStatus(t, r, spec.Name, Exited)
	st := checkStaysExited(t, r, spec.Name, first, data, 3)
	if st.ExitCode != 3 || st.RestartCount != 2 || st.Error != "" || st.Pid != 0 || st.MonitorPid != 0 {
		t.Errorf("final state %+v, want exited 3 after 2 restarts", st)
	}
	checkNoCgroup(t, spec.Name)
}

// TestRestartNotWanted: the policies that leave an exit as it is.
func TestRestartNotWanted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy RestartPolicy
		code   int
	}{
		{RestartPolicy{Name: RestartOnFailure}, 0},
		{RestartPolicy{Name: RestartNo}, 3},
		{RestartPolicy{}, 3},
	} {
		t.Run(fmt.Sprintf("%q-exit-%d", tc.policy.Name, tc.code), func(t *testing.T) {
			t.Parallel()
			r := testRuntime(t)
			spec, data := restartSpec(t, "norestart", tc.policy, fmt.Sprintf("echo run >> /data/runs; sleep 0.2; exit %d", tc.code))
			first := run(t, r, spec).State
			waitStatus(t, r, spec.Name, Exited)
			st := checkStaysExited(t, r, spec.Name, first, data, 1)
			if st.ExitCode != tc.code || st.RestartCount != 0 {
				t.Errorf("final state %+v", st)
			}
		})
	}
}

// TestRestartStopped: a stop, or a kill that counts as one, ends a restart
// loop for good, whether the process runs or the monitor waits to restart
// it; the exit code is the last run's.
func TestRestartStopped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("running", func(t *testing.T) {
		t.Parallel()
		r := testRuntime(t)
		spec, data := restartSpec(t, "stoprun", RestartPolicy{Name: RestartAlways},
			"echo run >> /data/runs; sleep 0.5; exit 1")
		run(t, r, spec)
		var st State
		waitFor(t, "a restarted process running", func() bool {
			st = getState(t, r, spec.Name)
			return st.Status == Running && st.RestartCount >= 1 && countRuns(t, data) >= 2
		})
		if err := r.Stop(ctx, spec.Name, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		n := countRuns(t, data)
		final := checkStaysExited(t, r, spec.Name, st, data, n)
		// sh has no handler for SIGTERM: the monitor sends SIGKILL.
		if final.ExitCode != 137 {
			t.Errorf("final state %+v, want exited 137", final)
		}
	})
	for _, how := range []string{"stop", "kill"} {
		t.Run(how+"-in-backoff", func(t *testing.T) {
			t.Parallel()
			r := testRuntime(t)
			spec, data := restartSpec(t, how+"wait", RestartPolicy{Name: RestartAlways}, "echo run >> /data/runs; exit 3")
			run(t, r, spec)
			// The fourth restart waits 800 ms: ample time to stop it.
			var st State
			waitFor(t, "the policy to wait for its fourth restart", func() bool {
				st = getState(t, r, spec.Name)
				return st.Status == Restarting && st.RestartCount >= 4
			})
			n := countRuns(t, data)
			var err error
			if how == "stop" {
				err = r.Stop(ctx, spec.Name, 5*time.Second)
			} else {
				err = r.Kill(ctx, spec.Name, syscall.SIGKILL)
			}
			if err != nil {
				t.Fatal(err)
			}
			final := checkStaysExited(t, r, spec.Name, st, data, n)
			if final.ExitCode != 3 || final.RestartCount != st.RestartCount || final.Error != "" {
				t.Errorf("final state %+v, want exited 3 with %d restarts", final, st.RestartCount)
			}
			checkNoCgroup(t, spec.Name)
		})
	}
}

// TestRestartAfterKill: a kill that is not a stop leaves "always" on, not
// "unless-stopped"; with no stop signal set, any kill is a stop (docker).
func TestRestartAfterKill(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy, stopSignal string
		restarts           bool
	}{
		{RestartAlways, "SIGINT", true},
		{RestartUnlessStopped, "SIGINT", false},
		{RestartAlways, "", false},
	} {
		t.Run(fmt.Sprintf("%s-stopsignal-%q", tc.policy, tc.stopSignal), func(t *testing.T) {
			t.Parallel()
			r := testRuntime(t)
			spec, data := restartSpec(t, "hup", RestartPolicy{Name: tc.policy},
				"trap 'exit 5' HUP; echo run >> /data/runs; echo ready; while true; do sleep 0.05; done")
			spec.StopSignal = tc.stopSignal
			first := run(t, r, spec).State
			waitLog(t, r, spec.Name, "stdout ready")
			if err := r.Kill(context.Background(), spec.Name, syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			if !tc.restarts {
				waitStatus(t, r, spec.Name, Exited)
				if st := checkStaysExited(t, r, spec.Name, first, data, 1); st.ExitCode != 5 || st.RestartCount != 0 {
					t.Errorf("final state %+v, want exited 5", st)
				}
				return
			}
			waitFor(t, "the second run", func() bool {
				st := getState(t, r, spec.Name)
				return st.Status == Running && st.RestartCount == 1 && countRuns(t, data) == 2
			})
		})
	}
}

// TestRestartBackoffGrows: the delays between the runs of a crash loop
// double: monitor.log says so, and the gaps between the runs' first lines
// show it. A gap is the delay plus the launch of the next run, which load
// can stretch by hundreds of milliseconds: each gap is checked against its
// delay, and against the gap two before it (a 3 or 4 times longer delay),
// not the one just before.
func TestRestartBackoffGrows(t *testing.T) {
	r := testRuntime(t)
	spec, _ := restartSpec(t, "backoff", RestartPolicy{Name: RestartOnFailure}, "echo run; exit 1")
	run(t, r, spec)
	var times []time.Time
	waitFor(t, "five runs", func() bool {
		times = times[:0]
		err := r.ReadLogs(context.Background(), spec.Name, LogOptions{Tail: -1}, func(e LogEntry) error {
			if string(e.Text) == "run" {
				times = append(times, e.Time)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return len(times) >= 5
	})
	var gaps []time.Duration
	for i := 1; i < 5; i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]))
	}
	t.Logf("gaps between runs: %v", gaps)
	for i, g := range gaps {
		if delay := restartDelayMin << i; g < delay {
			t.Errorf("gap %d is %v, shorter than its delay %v", i+1, g, delay)
		}
		if i >= 2 && g <= gaps[i-2] {
			t.Errorf("gap %d (%v) is not longer than gap %d (%v)", i+1, g, i-1, gaps[i-2])
		}
	}
	ml := monitorLogText(t, r, spec.Name)
	for i, delay := range []string{"100ms", "200ms", "400ms", "800ms"} {
		if want := fmt.Sprintf("restart %d (policy on-failure) in %s", i+1, delay); !strings.Contains(ml, want) {
			t.Errorf("monitor.log lacks %q:\n%s", want, ml)
		}
	}
}

// TestRestartFailedStartCounts: a restart whose start fails (the command
// vanished from a bind mount) counts as an exit with the start's error, and
// the policy goes on, then gives up.
func TestRestartFailedStartCounts(t *testing.T) {
	t.Parallel()
	r := testRuntime(t)
	spec, data := restartSpec(t, "vanish", RestartPolicy{Name: RestartOnFailure, MaxRetries: 2}, "")
	script := "#!/bin/sh\necho run >> /data/runs\nrm /data/cmd\nexit 1\n"
	if err := os.WriteFile(filepath.Join(data, "cmd"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	spec.Args = []string{"/data/cmd"}
	first := run(t, r, spec).State
	waitStatus(t, r, spec.Name, Exited)
	st := checkStaysExited(t, r, spec.Name, first, data, 1)
	if st.ExitCode != 127 || st.RestartCount != 2 || !strings.Contains(st.Error, "/data/cmd") {
		t.Errorf("final state %+v, want exited 127 after 2 restarts, with the start's error", st)
	}
	if ml := monitorLogText(t, r, spec.Name); strings.Count(ml, "could not restart (exit code 127)") != 1 {
		t.Errorf("monitor.log:\n%s", ml)
	}
	checkNoCgroup(t, spec.Name)
	if _, err := os.Stat(filepath.Join(r.dir, spec.Name, monitorSock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left: %v", err)
	}
}

// TestRestartSetsUpNetworkAgain: each run gets a new namespace, plugged in
// by the network role and served by a new resolver, as the first.
func TestRestartSetsUpNetworkAgain(t *testing.T) {
	t.Parallel()
	r := testRuntime(t)
	var b [4]byte
	rand.Read(b[:])
	veth := "bt-rs" + hex.EncodeToString(b[:])
	spec, _ := restartSpec(t, "renet", RestartPolicy{Name: RestartOnFailure},
		"ls /sys/class/net; if [ -e /data/once ]; then echo second; exec sleep 30; fi; touch /data/once; exit 1")
	spec.Network = json.RawMessage(`{"name":"` + veth + `"}`)
	marker := filepath.Join(t.TempDir(), "dns")
	spec.DNSServer = json.RawMessage(`{"marker":"` + marker + `"}`)
	first := run(t, r, spec).State
	waitLog(t, r, spec.Name, "stdout second")
	st := getState(t, r, spec.Name)
	if st.Status != Running || st.RestartCount != 1 || st.Pid == first.Pid {
		t.Fatalf("state %+v", st)
	}
	if got, want := readFile(t, marker), fmt.Sprintf("/proc/%d/ns/net", st.Pid); got != want {
		t.Errorf("the resolver serves %q, want the new namespace %q", got, want)
	}
	if n := strings.Count(strings.Join(logLines(t, r, spec.Name), "\n")+"\n", "stdout "+veth+"\n"); n != 2 {
		t.Errorf("the network role's interface was seen in %d runs, want 2", n)
	}
	if err := r.Stop(context.Background(), spec.Name, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, marker); got != "closed" {
		t.Errorf("after the stop the resolver is %q, want closed", got)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDeleteRestartingContainer: Delete of a container in a restart loop
// ends its monitor and leaves nothing.
func TestDeleteRestartingContainer(t *testing.T) {
	t.Parallel()
	r := testRuntime(t)
	spec, _ := restartSpec(t, "delloop", RestartPolicy{Name: RestartAlways}, "exit 1")
	run(t, r, spec)
	var st State
	waitFor(t, "the restart loop", func() bool {
		st = getState(t, r, spec.Name)
		return st.Status == Restarting && st.RestartCount >= 2
	})
	if err := r.Delete(context.Background(), spec.Name); err != nil {
		t.Fatal(err)
	}
	if processAlive(st.MonitorPid, st.MonitorStart) {
		t.Error("the monitor lives on after the delete")
	}
	checkNoCgroup(t, spec.Name)
	if _, err := os.Stat(filepath.Join(r.dir, spec.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory left: %v", err)
	}
}
