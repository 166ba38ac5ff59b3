package runtime

import (
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
	"time"
)

// The monitor applies the container's restart policy itself, so that it goes
// on after the berth command that started the container has exited. The
// rules are docker's (its restartmanager and daemon/kill.go):
//
//   - "always" restarts whatever the exit code, "unless-stopped" too unless
//     the user stopped or signalled the container, "on-failure" after a
//     non-zero exit code up to MaxRetries times (0: no limit), "no" never.
//   - A stop, and a kill with SIGKILL or the stop signal (any signal when
//     the spec names no stop signal), calls the policy off for the rest of
//     the monitor's life: nothing restarts afterwards, and a restart that
//     waits out its delay does not happen. Any kill at all marks the
//     container as stopped by the user, which only "unless-stopped" heeds.
//   - The delay before a restart is 100 ms, doubled at each restart up to
//     a minute, and back to 100 ms after a run that lasted 10 s.
//   - A restart that fails to start counts as an exit (with docker's exit
//     code for a failed start), and the policy goes on.
//
// The monitor stays the same process through its restarts: MonitorPid does
// not change, Pid does, and RestartCount counts them until the next start
// by the user, which spawns a new monitor and begins again at 0.
//
//	Running ──exit──► restart? ──no──► Exited
//	   ▲                 │yes
//	   │                 ▼
//	   └──launch──── Restarting (RestartCount+1, the backoff's delay)
//	                     │stop, or a kill that cancels
//	                     └──────────────────────────► Exited (the last exit code)

// The restart policies, as Spec.Restart.Name holds them.
const (
	RestartNo            = "no"
	RestartAlways        = "always"
	RestartOnFailure     = "on-failure"
	RestartUnlessStopped = "unless-stopped"
)

// Docker's restart delays.
const (
	restartDelayMin = 100 * time.Millisecond
	restartDelayMax = time.Minute
	// restartResetAfter is how long a run must last for the next delay to
	// begin again at restartDelayMin.
	restartResetAfter = 10 * time.Second
)

// restarts reports whether the policy restarts a process that exited with
// code, after restarted restarts; stoppedByUser: a kill asked through the
// control socket (a stop cancels the policy before it is asked).
func (p RestartPolicy) restarts(code, restarted int, stoppedByUser bool) bool {
	switch p.Name {
	case RestartAlways:
		return true
	case RestartUnlessStopped:
		return !stoppedByUser
	case RestartOnFailure:
		return code != 0 && (p.MaxRetries <= 0 || restarted < p.MaxRetries)
	}
	return false
}

// String is the policy as docker's --restart takes it: "on-failure:3".
func (p RestartPolicy) String() string {
	if p.Name == RestartOnFailure && p.MaxRetries > 0 {
		return fmt.Sprintf("%s:%d", p.Name, p.MaxRetries)
	}
	if p.Name == "" {
		return RestartNo
	}
	return p.Name
}

// backoff is the delay before the next restart; zero before the first.
type backoff time.Duration

// next is the delay before a restart after a run that lasted ran.
func (b *backoff) next(ran time.Duration) time.Duration {
	if ran >= restartResetAfter {
		*b = 0
	}
	d := 2 * time.Duration(*b)
	if d == 0 {
		d = restartDelayMin
	}
	*b = backoff(min(d, restartDelayMax))
	return time.Duration(*b)
}

// killCancelsRestart reports whether a kill with sig is a stop as docker
// counts it: SIGKILL, the spec's stop signal, or any signal when the spec
// names none (docker's default is not a configured stop signal).
func killCancelsRestart(spec Spec, sig syscall.Signal) bool {
	if sig == syscall.SIGKILL || spec.StopSignal == "" {
		return true
	}
	stop, err := parseSignal(spec.StopSignal)
	return err != nil || stop == sig
}

// runExit is how one run of the container ended.
type runExit struct {
	code int
	oom  bool
	// err is why a restart could not start the process (code is then
	// docker's code for it: 126, 127 or 128).
	err error
	// ran is how long the process ran; at is when its end was recorded.
	ran time.Duration
	at  time.Time
}

// cancelRestartLocked calls the policy off for the rest of the monitor's
// life; m.mu is held.
func (m *monitor) cancelRestartLocked() {
	if !m.cancelled {
		m.cancelled = true
		close(m.cancel)
	}
}

// supervise waits for each run's process, restarts it as the policy says,
// and records the final exit.
func (m *monitor) supervise() {
	var b backoff
	for {
		code, werr := m.proc.wait()
		if werr != nil {
			fmt.Fprintf(os.Stderr, "berth monitor: %v\n", werr)
		}
		m.stopHealth()
		ex := runExit{code: code, oom: m.endRun(), ran: time.Since(m.runStart)}
		ex.at = time.Now().UTC()
		if ex.oom {
			m.event(EventOOM, nil)
		}
		m.event(EventDie, exitAttributes(code))
		for {
			delay, ok := m.restartOrFinish(ex, &b)
			if !ok {
				m.finish(ex)
				return
			}
			m.logRestart(ex, delay)
			if !m.waitRestart(delay) {
				m.finish(ex)
				return
			}
			m.event(EventRestart, nil)
			ok, err := m.relaunch()
			if !ok {
				m.finish(ex)
				return
			}
			if err == nil {
				// The last run's buffers and process are garbage now,
				// as the start's were: without this the monitor grows
				// with each restart of a crash loop.
				debug.FreeOSMemory()
				break
			}
			ex = runExit{code: StartExitCode(err), err: err, at: time.Now().UTC()}
			m.event(EventDie, exitAttributes(ex.code))
		}
	}
}

// restartOrFinish decides what follows the run that ended with ex: the
// restart is recorded (status restarting, RestartCount+1) and its delay
// returned; else nothing is recorded and ok is false.
func (m *monitor) restartOrFinish(ex runExit, b *backoff) (delay time.Duration, ok bool) {
	delay = b.next(ex.ran)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancelled || !m.spec.Restart.restarts(ex.code, m.state.RestartCount, m.stoppedByUser) {
		return 0, false
	}
	st := m.state
	st.Status = Restarting
	st.Pid = 0
	st.ExitCode, st.OOMKilled, st.FinishedAt = ex.code, ex.oom, ex.at
	st.Error = ""
	if ex.err != nil {
		st.Error = ex.err.Error()
	}
	st.RestartCount++
	if err := writeState(m.dir, st); err != nil {
		fmt.Fprintf(os.Stderr, "berth monitor: record state: %v\n", err)
	}
	m.state = st
	return delay, true
}

// waitRestart waits out delay, and reports false when the policy is called
// off meanwhile.
func (m *monitor) waitRestart(delay time.Duration) bool {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-m.cancel:
		return false
	case <-t.C:
		return true
	}
}

// relaunch starts the process again after a restart's delay, unless the
// policy was called off: ok false then. A stop that comes during the
// launch waits for it (m.launching), so it finds the new process to stop.
func (m *monitor) relaunch() (ok bool, err error) {
	m.launching.Lock()
	defer m.launching.Unlock()
	m.mu.Lock()
	cancelled := m.cancelled
	m.mu.Unlock()
	if cancelled {
		return false, nil
	}
	_, err = m.launch()
	return true, err
}

// logRestart records a restart on the monitor's stderr (monitor.log).
func (m *monitor) logRestart(ex runExit, delay time.Duration) {
	m.mu.Lock()
	n := m.state.RestartCount
	m.mu.Unlock()
	why := fmt.Sprintf("exited with code %d after %v", ex.code, ex.ran.Round(time.Millisecond))
	if ex.err != nil {
		why = fmt.Sprintf("could not restart (exit code %d): %v", ex.code, ex.err)
	}
	fmt.Fprintf(os.Stderr, "%s berth monitor: %s; restart %d (policy %s) in %v\n",
		ex.at.Format(time.RFC3339Nano), why, n, m.spec.Restart, delay)
}
