package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The monitor runs the container's healthcheck, so that it goes on after
// the CLI exits, with docker's rules (daemon/health.go):
//
//   - A probe runs every Interval, the first one Interval after the start;
//     during the start period, every StartInterval instead.
//   - Exit code 0 is a success: the container is healthy and the failing
//     streak is 0. Any other code, a probe that cannot start, and a probe
//     past its Timeout (killed) are failures.
//   - A failure while the container is still starting (no success yet)
//     and within StartPeriod of its start does not count. Otherwise it adds
//     to the streak, and Retries failures in a row make it unhealthy.
//   - The last five probes are kept, with 4 KiB of their output each.
//
// Each run of the container (a restart too) begins again at starting. The
// verdict lives in State.Health; a change of it is a health_status event.

// Docker's defaults for a healthcheck's zero values.
const (
	defaultProbeInterval      = 30 * time.Second
	defaultProbeTimeout       = 30 * time.Second
	defaultProbeStartInterval = 5 * time.Second
	defaultProbeRetries       = 3
	// healthLogLength probes are kept, with at most probeOutputMax bytes
	// of output each.
	healthLogLength = 5
	probeOutputMax  = 4096
)

// withDefaults fills docker's defaults in for the zero values.
func (h Healthcheck) withDefaults() Healthcheck {
	if h.Interval <= 0 {
		h.Interval = defaultProbeInterval
	}
	if h.Timeout <= 0 {
		h.Timeout = defaultProbeTimeout
	}
	if h.StartInterval <= 0 {
		h.StartInterval = defaultProbeStartInterval
	}
	if h.Retries <= 0 {
		h.Retries = defaultProbeRetries
	}
	return h
}

// prober runs the probes of one run of the container.
type prober struct {
	m     *monitor
	hc    Healthcheck
	pidfd *os.File // the run's process
	start time.Time
	stop  chan struct{}
	done  chan struct{}
}

// startHealth starts probing the run's process pid (the monitor's child,
// not yet waited for: its pidfd is its own), when the spec has a
// healthcheck.
func (m *monitor) startHealth(pid int, start time.Time) {
	if m.spec.Healthcheck == nil {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth monitor: healthcheck: pidfd_open: %v\n", err)
		return
	}
	p := &prober{
		m:     m,
		hc:    m.spec.Healthcheck.withDefaults(),
		pidfd: os.NewFile(uintptr(fd), "pidfd"),
		start: start,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	m.prober = p
	go p.run()
}

// stopHealth ends the run's probing, a probe under way included, and
// returns once nothing of it can write the state any more.
func (m *monitor) stopHealth() {
	if m.prober == nil {
		return
	}
	close(m.prober.stop)
	<-m.prober.done
	m.prober.pidfd.Close()
	m.prober = nil
}

func (p *prober) run() {
	defer close(p.done)
	t := time.NewTimer(p.next())
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		if !p.m.paused() {
			res, ok := p.probe()
			if !ok {
				return
			}
			p.m.recordProbe(res, p.hc, p.start)
		}
		t.Reset(p.next())
	}
}

// next is the wait before the next probe.
func (p *prober) next() time.Duration {
	if time.Since(p.start) < p.hc.StartPeriod && p.m.healthStatus() == HealthStarting {
		return p.hc.StartInterval
	}
	return p.hc.Interval
}

// probe runs the check once; ok is false when the run ends meanwhile.
func (p *prober) probe() (res HealthResult, ok bool) {
	res.Start = time.Now()
	defer func() { res.End = time.Now() }()
	r, w, err := os.Pipe()
	if err != nil {
		res.ExitCode, res.Output = -1, err.Error()
		return res, true
	}
	defer r.Close()
	proc, err := startEnter("/proc/self/exe", p.m.dir, p.m.spec, p.pidfd, ExecOptions{Args: p.hc.Args, Stdout: w, Stderr: w})
	w.Close()
	if err != nil {
		res.ExitCode, res.Output = -1, err.Error()
		if errors.Is(err, ErrNotRunning) {
			return res, false
		}
		return res, true
	}
	out := make(chan string, 1)
	go func() { out <- readCapped(r, probeOutputMax) }()
	exited := make(chan int, 1)
	go func() {
		code, _ := proc.Wait()
		exited <- code
	}()
	timeout := time.NewTimer(p.hc.Timeout)
	defer timeout.Stop()
	select {
	case res.ExitCode = <-exited:
		res.Output = <-out
	case <-timeout.C:
		proc.Kill()
		<-exited
		res.ExitCode = -1
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", p.hc.Timeout)
	case <-p.stop:
		proc.Kill()
		<-exited
		return res, false
	}
	return res, true
}

// readCapped reads r to its end and returns at most max bytes of it.
func readCapped(r io.Reader, max int) string {
	buf := make([]byte, max)
	n, _ := io.ReadFull(r, buf)
	io.Copy(io.Discard, r)
	return string(buf[:n])
}

// recordProbe applies a probe's result to the run's health, records it,
// and sends a health_status event when the verdict changes.
func (m *monitor) recordProbe(res HealthResult, hc Healthcheck, start time.Time) {
	m.mu.Lock()
	if m.state.Health == nil || !m.state.Status.Alive() {
		m.mu.Unlock()
		return
	}
	h := *m.state.Health
	prev := h.Status
	if res.ExitCode == 0 {
		h.Status, h.FailingStreak = Healthy, 0
	} else if h.Status != HealthStarting || res.Start.Sub(start) >= hc.StartPeriod {
		h.FailingStreak++
		if h.FailingStreak >= hc.Retries {
			h.Status = Unhealthy
		}
	}
	h.Log = append(append([]HealthResult{}, h.Log...), res)
	if len(h.Log) > healthLogLength {
		h.Log = h.Log[len(h.Log)-healthLogLength:]
	}
	st := m.state
	st.Health = &h
	if err := writeState(m.dir, st); err != nil {
		fmt.Fprintf(os.Stderr, "berth monitor: record state: %v\n", err)
	}
	m.state = st
	m.mu.Unlock()
	if h.Status != prev {
		m.event(EventHealthStatus, map[string]string{"healthStatus": string(h.Status)})
		if h.Status == Unhealthy {
			fmt.Fprintf(os.Stderr, "%s berth monitor: unhealthy after %d failed probes; last (exit code %d): %s\n",
				res.End.UTC().Format(time.RFC3339Nano), h.FailingStreak, res.ExitCode, res.Output)
		}
	}
}

func (m *monitor) healthStatus() HealthStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state.Health == nil {
		return ""
	}
	return m.state.Health.Status
}

func (m *monitor) paused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.Status == Paused
}

// event appends one of the container's events to the spec's event log.
func (m *monitor) event(action string, attrs map[string]string) {
	if m.spec.EventLog == "" {
		return
	}
	ev := Event{Action: action, Container: m.spec.Name, ID: m.spec.ID, Attributes: attrs}
	if err := AppendEvent(m.spec.EventLog, ev); err != nil {
		fmt.Fprintf(os.Stderr, "berth monitor: %v\n", err)
	}
}

// exitAttributes are the attributes of a die event.
func exitAttributes(code int) map[string]string {
	return map[string]string{"exitCode": strconv.Itoa(code)}
}
