package runtime

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// healthSpec is a busybox container running script, probed by probe.
func healthSpec(t *testing.T, base, script string, hc Healthcheck) Spec {
	spec := shSpec(t, base, script)
	spec.Healthcheck = &hc
	spec.EventLog = filepath.Join(t.TempDir(), "events.jsonl")
	return spec
}

// waitHealth waits until the container's health is want.
func waitHealth(t *testing.T, r *Runtime, name string, want HealthStatus) *Container {
	t.Helper()
	var c *Container
	waitFor(t, name+" to be "+string(want), func() bool {
		var err error
		if c, err = r.Get(name); err != nil {
			t.Fatal(err)
		}
		return c.State.Health != nil && c.State.Health.Status == want
	})
	return c
}

// readEvents reads an event log whole, as "action[:attribute]" strings.
func readEvents(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event line %q: %v", sc.Text(), err)
		}
		s := ev.Action
		for _, k := range []string{"healthStatus", "exitCode"} {
			if v, ok := ev.Attributes[k]; ok {
				s += ":" + v
			}
		}
		if ev.Container == "" || len(ev.ID) != 64 || ev.Time.IsZero() {
			t.Errorf("event without its container or time: %+v", ev)
		}
		out = append(out, s)
	}
	return out
}

func TestHealthStartingThenHealthy(t *testing.T) {
	r := testRuntime(t)
	spec := healthSpec(t, "healthy", "sleep 0.4; touch /tmp/ok; exec sleep 1000",
		Healthcheck{Args: []string{"sh", "-c", "echo probing; test -f /tmp/ok"}, Interval: 50 * time.Millisecond, Retries: 100})
	c := run(t, r, spec)
	if c.State.Health == nil || c.State.Health.Status != HealthStarting {
		t.Fatalf("health at start: %+v", c.State.Health)
	}
	c = waitHealth(t, r, spec.Name, Healthy)
	h := c.State.Health
	if h.FailingStreak != 0 || len(h.Log) == 0 || len(h.Log) > 5 {
		t.Fatalf("health %+v", h)
	}
	last := h.Log[len(h.Log)-1]
	if last.ExitCode != 0 || last.Output != "probing\n" || last.End.Before(last.Start) {
		t.Errorf("last probe %+v", last)
	}
	if err := r.Stop(t.Context(), spec.Name, time.Second); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(readEvents(t, spec.EventLog), " ")
	if got != "start health_status:healthy die:137" {
		t.Errorf("events %q", got)
	}
}

func TestHealthUnhealthyAndTimeouts(t *testing.T) {
	r := testRuntime(t)
	fail := healthSpec(t, "unhealthy", "exec sleep 1000",
		Healthcheck{Args: []string{"sh", "-c", "echo no >&2; exit 3"}, Interval: 20 * time.Millisecond, Retries: 2})
	slow := healthSpec(t, "slow", "exec sleep 1000",
		Healthcheck{Args: []string{"sleep", "100"}, Interval: 20 * time.Millisecond, Timeout: 100 * time.Millisecond, Retries: 1})
	missing := healthSpec(t, "missing", "exec sleep 1000",
		Healthcheck{Args: []string{"nosuch"}, Interval: 20 * time.Millisecond, Retries: 1})
	for _, s := range []Spec{fail, slow, missing} {
		run(t, r, s)
	}
	c := waitHealth(t, r, fail.Name, Unhealthy)
	if last := c.State.Health.Log[len(c.State.Health.Log)-1]; c.State.Health.FailingStreak < 2 || last.ExitCode != 3 || last.Output != "no\n" {
		t.Errorf("failing probe: %+v", c.State.Health)
	}
	c = waitHealth(t, r, slow.Name, Unhealthy)
	if last := c.State.Health.Log[0]; last.ExitCode != -1 || last.Output != "Health check exceeded timeout (100ms)" {
		t.Errorf("probe past its timeout: %+v", last)
	}
	// The killed probe's sleep is gone from the container.
	waitFor(t, "the timed-out probe to be killed", func() bool {
		pids, _ := r.Processes(slow.Name)
		return len(pids) == 1
	})
	c = waitHealth(t, r, missing.Name, Unhealthy)
	if last := c.State.Health.Log[0]; last.ExitCode != -1 || last.Output != `exec: "nosuch": executable file not found in $PATH` {
		t.Errorf("probe that cannot start: %+v", last)
	}
}

func TestHealthStartPeriod(t *testing.T) {
	r := testRuntime(t)
	spec := healthSpec(t, "start-period", "exec sleep 1000",
		Healthcheck{Args: []string{"false"}, Interval: 100 * time.Millisecond, StartPeriod: 3 * time.Second, StartInterval: 50 * time.Millisecond, Retries: 1})
	start := time.Now()
	run(t, r, spec)
	var c *Container
	waitFor(t, "two probes", func() bool {
		var err error
		if c, err = r.Get(spec.Name); err != nil {
			t.Fatal(err)
		}
		return len(c.State.Health.Log) >= 2
	})
	// Probes ran at the start interval, and their failures did not count.
	if h := c.State.Health; time.Since(start) < 3*time.Second && (h.Status != HealthStarting || h.FailingStreak != 0) {
		t.Fatalf("within the start period: %+v", h)
	}
	// After the period, a failure counts.
	waitHealth(t, r, spec.Name, Unhealthy)
	if time.Since(start) < 3*time.Second {
		t.Errorf("unhealthy %v after the start, within the start period", time.Since(start))
	}
}

func TestPauseUnpause(t *testing.T) {
	r := testRuntime(t)
	spec := healthSpec(t, "pause", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done",
		Healthcheck{Args: []string{"true"}, Interval: 20 * time.Millisecond})
	run(t, r, spec)
	waitLog(t, r, spec.Name, "stdout 3")
	waitHealth(t, r, spec.Name, Healthy)
	ctx := t.Context()
	if err := r.Pause(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	if err := r.Pause(ctx, spec.Name); err == nil || !strings.Contains(err.Error(), "already paused") {
		t.Errorf("second pause: %v", err)
	}
	c := waitStatus(t, r, spec.Name, Paused)
	n := len(logLines(t, r, spec.Name))
	time.Sleep(200 * time.Millisecond)
	if m := len(logLines(t, r, spec.Name)); m > n+1 {
		t.Errorf("the paused container printed %d lines", m-n)
	}
	if _, err := r.Exec(spec.Name, ExecOptions{Args: []string{"true"}}); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("exec into a paused container: %v", err)
	}
	if pids, err := r.Processes(spec.Name); err != nil || len(pids) == 0 {
		t.Errorf("processes of a paused container: %v, %v", pids, err)
	}
	if err := r.Unpause(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r, spec.Name, Running)
	waitFor(t, "output after unpause", func() bool { return len(logLines(t, r, spec.Name)) > n+3 })

	// Stopping a paused container thaws it to deliver the signal.
	if err := r.Pause(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := r.Stop(ctx, spec.Name, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stop of a paused container took %v", d)
	}
	c = waitStatus(t, r, spec.Name, Exited)
	_ = c
	events := strings.Join(readEvents(t, spec.EventLog), " ")
	for _, want := range []string{"start ", "health_status:healthy", "pause unpause", "pause unpause die:137"} {
		if !strings.Contains(events, want) {
			t.Errorf("events %q lack %q", events, want)
		}
	}
	if err := r.Unpause(ctx, spec.Name); err == nil {
		t.Error("unpause of an exited container")
	}
}
