package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The monitor is `berth monitor DIR`: one small process per running
// container, started by Runtime.Start in its own session. It owns the
// container's init, copies its output into the log, answers the control
// socket, applies the restart policy (restart.go) and records the exit:
//
//	Runtime.Start                 monitor                          init
//	  spawn, fd 3 = ready pipe ──►  open log, listen
//	                                cgroup, output pipes (launch)
//	                                newInit ─────────────────────►  (new namespaces)
//	                                add to cgroup, network, DNS,
//	                                run(request) ────────────────►  mounts, exec
//	                                state: running
//	  ◄── {"pid":N} or {"error"} ── ready
//	  (Start returns; the CLI may exit)
//	                                copy output, serve control, wait
//	                                kill the cgroup's leftovers, drain output,
//	                                delete the cgroup, stop DNS (endRun)
//	                                restart? state: restarting, wait, launch again
//	                                else state: exited
//
// Its resident memory counts once per running container, so it keeps little:
// one P, a low GC target, a 16 KiB buffer per stream.

// readyFD is the monitor's end of the ready pipe (Start's ExtraFiles[0]).
const readyFD = 3

// readyMessage is what the monitor tells Start, once.
type readyMessage struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// monitor is the state of one monitor process.
type monitor struct {
	dir   string
	spec  Spec // set by start, read-only afterwards
	roles Roles
	log   *logWriter
	ln    *net.UnixListener
	// ports holds the published ports from start to finish, across
	// restarts (ports_linux.go).
	ports heldPorts

	// The current run, owned by the main goroutine (the control handlers
	// reach its process through proc, under mu).
	cg  *containerCgroup
	out *outputCopier
	// copied is closed when out has copied both streams to their end.
	copied chan struct{}
	// dns is the container's resolver, when its spec asks for one.
	dns io.Closer
	// runStart is when the process started, on the monotonic clock.
	runStart time.Time
	// prober runs the run's healthcheck (nil: none).
	prober *prober

	// launching is held while a restart starts the process: a stop or a
	// kill waits for it, to reach the process it starts.
	launching sync.Mutex

	mu    sync.Mutex
	state State
	proc  *initProcess
	// cancelled: a stop (or a kill that counts as one) called the restart
	// policy off; cancel is closed then. stoppedByUser: any kill.
	cancelled, stoppedByUser bool
	cancel                   chan struct{}
	// exited is closed once the final exit is recorded in state.json.
	exited chan struct{}
	conns  sync.WaitGroup
}

func monitorMain(roles Roles) {
	// The init gets SIGKILL when the thread that spawned it ends
	// (Pdeathsig). The main goroutine spawns it, at each restart too, and
	// lives as long as the monitor: pin it to its thread.
	goruntime.LockOSThread()
	goruntime.GOMAXPROCS(1)
	debug.SetGCPercent(25)
	// The ready pipe must not leak into the init and the container: Start
	// waits for its EOF.
	unix.CloseOnExec(readyFD)
	ready := os.NewFile(readyFD, "ready")
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: berth monitor DIR")
		os.Exit(2)
	}
	m := &monitor{dir: os.Args[2], roles: roles, cancel: make(chan struct{}), exited: make(chan struct{})}
	os.Exit(m.run(ready))
}

// run starts the container and supervises it until it exits for good; the
// result is the monitor's exit status.
func (m *monitor) run(ready *os.File) int {
	pid, err := m.start()
	if err != nil {
		var se startError
		if !errors.As(err, &se) {
			fmt.Fprintf(os.Stderr, "berth monitor %s: %v\n", m.dir, err)
		}
		reportReady(ready, readyMessage{Error: err.Error()})
		return 1
	}
	reportReady(ready, readyMessage{Pid: pid})
	// What the binary's package initialisers and the start allocated is
	// garbage now: give its pages back, the monitor lives long.
	debug.FreeOSMemory()
	go m.serve(m.ln)
	m.supervise()
	return 0
}

func reportReady(ready *os.File, msg readyMessage) {
	data, _ := json.Marshal(msg)
	// Start may be gone (killed): the monitor goes on all the same.
	ready.Write(data)
	ready.Close()
}

// start prepares what lasts for the monitor's life (the spec, the log, the
// control socket) and launches the first run. On failure nothing of this
// start is left: no process, no cgroup, no socket; the state records the
// error.
func (m *monitor) start() (pid int, err error) {
	spec, err := readSpec(m.dir)
	if err != nil {
		return 0, fmt.Errorf("read config: %w", err)
	}
	m.spec = spec
	st, err := readState(m.dir)
	if err != nil {
		return 0, fmt.Errorf("read state: %w", err)
	}
	defer func() {
		if err != nil {
			m.recordStartError(st, err)
		}
	}()
	self, err := procStartTime(os.Getpid())
	if err != nil {
		return 0, fmt.Errorf("monitor start time: %w", err)
	}
	if m.log, err = openLog(m.dir, spec.Log); err != nil {
		return 0, fmt.Errorf("open log: %w", err)
	}
	defer func() {
		if err != nil {
			m.log.close()
		}
	}()
	ln, err := listenControl(m.dir)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			ln.Close()
			os.Remove(filepath.Join(m.dir, monitorSock))
		}
	}()
	// Bound once for the monitor's life, before the first run: a port is
	// the container's across its restarts, and free once it exits for good.
	if m.ports, err = holdPorts(spec.HoldPorts); err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			m.ports.release()
		}
	}()
	// A start by the user begins the restart count again, as docker's.
	m.state = State{MonitorPid: os.Getpid(), MonitorStart: self, CreatedAt: st.CreatedAt}
	if pid, err = m.launch(); err != nil {
		return 0, err
	}
	m.ln = ln
	return pid, nil
}

// launch starts one run of the container's process, with the same spec and
// directory every time: a cgroup, output pipes into the log, the init in new
// namespaces, its network and resolver; then records it running. On failure
// nothing of the run is left: no process, no cgroup, no resolver.
func (m *monitor) launch() (pid int, err error) {
	spec := m.spec
	if spec.NetworkFrom != "" {
		// Resolved at each run, not at create: the other container's
		// process is the namespace, and it may have been restarted since.
		netns, err := containerNetNS(filepath.Join(filepath.Dir(m.dir), spec.NetworkFrom))
		if err != nil {
			return 0, fmt.Errorf("join the network of container %s: %w", spec.NetworkFrom, err)
		}
		spec.NetNS = netns
	}
	cg, err := createCgroup(spec.Name, spec.Resources, spec.Security)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			cg.killAll(context.Background())
			if derr := cg.delete(); derr != nil {
				fmt.Fprintf(os.Stderr, "berth monitor: %v\n", derr)
			}
		}
	}()

	out, stdout, stderr, err := newOutputCopier(m.log)
	if err != nil {
		return 0, err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		if err := out.run(); err != nil {
			fmt.Fprintf(os.Stderr, "berth monitor: copy output: %v\n", err)
		}
	}()
	defer func() {
		if err != nil {
			// The init is gone, and with it the pipes' other ends: the
			// copier ends at EOF after writing what it printed.
			<-copied
			out.close()
		}
	}()

	p, err := newInit("/proc/self/exe", stdout, stderr, spec.newNetwork())
	stdout.Close()
	stderr.Close()
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			// The init exits after reporting an error; one that failed
			// for another reason (a broken sync socket) may run on.
			p.cmd.Process.Kill()
			p.wait()
		}
	}()
	if err := cg.add(p.pid()); err != nil {
		return 0, err
	}
	if err := m.setupNetwork(&spec, p.pid()); err != nil {
		return 0, err
	}
	dns, err := m.startDNS(&spec, p.pid())
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil && dns != nil {
			dns.Close()
		}
	}()
	if err := p.run(initRequest{Spec: spec, Dir: m.dir}); err != nil {
		if cg.oomKilled() {
			// The init itself ran out of memory before the exec: the
			// broken sync socket is only the symptom.
			return 0, fmt.Errorf("the container's init was killed out of memory before the process started: raise mem_limit (%w)", err)
		}
		return 0, err
	}

	now := time.Now()
	m.mu.Lock()
	st := State{
		Status:       Running,
		Pid:          p.pid(),
		MonitorPid:   m.state.MonitorPid,
		MonitorStart: m.state.MonitorStart,
		RestartCount: m.state.RestartCount,
		CreatedAt:    m.state.CreatedAt,
		StartedAt:    now.UTC(),
	}
	if spec.Healthcheck != nil {
		st.Health = &Health{Status: HealthStarting}
	}
	err = writeState(m.dir, st)
	if err == nil {
		m.state, m.proc, m.cg = st, p, cg
	}
	m.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("record state: %w", err)
	}
	m.out, m.copied, m.dns, m.runStart = out, copied, dns, now
	m.event(EventStart, nil)
	m.startHealth(p.pid(), now)
	return p.pid(), nil
}

// recordStartError keeps the container's status (created stays created, a
// container that ran before stays exited), and records the error with the
// exit code docker gives a start that failed: 127 when the command is not
// found, 126 when it cannot be executed, 128 otherwise.
func (m *monitor) recordStartError(st State, err error) {
	if st.Status != Created {
		st.Status = Exited
	}
	st.Pid, st.MonitorPid, st.MonitorStart = 0, 0, 0
	st.Error = err.Error()
	st.ExitCode = StartExitCode(err)
	if st.Status == Exited {
		st.FinishedAt = time.Now().UTC()
	}
	if werr := writeState(m.dir, st); werr != nil {
		fmt.Fprintf(os.Stderr, "berth monitor: record state: %v\n", werr)
	}
}

// StartExitCode maps a start error (of the init, or of an exec) to docker's exit codes. The message
// crossed a process boundary as text (initError), so its words are all
// there is to go by.
func StartExitCode(err error) int {
	var se startError
	if !errors.As(err, &se) {
		return 128
	}
	msg := string(se)
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 128
}

// endRun cleans up after the run's process exited, and reports whether the
// kernel's OOM killer struck in its cgroup.
func (m *monitor) endRun() (oom bool) {
	// PID 1 of the namespace is gone, so the kernel kills the rest; the
	// cgroup catches any that escaped the namespace, and with them the
	// last writers of the output pipes.
	if err := m.cg.killAll(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "berth monitor: %v\n", err)
	}
	select {
	case <-m.copied:
	case <-time.After(5 * time.Second):
		// A writer outside the cgroup holds a pipe: stop reading.
		m.out.abort()
		<-m.copied
	}
	m.out.close()
	oom = m.cg.oomKilled()
	// Delete the cgroup before recording the exit: once the state says
	// exited, a new start may create it again, and this monitor must not
	// take it away from it.
	if err := m.cg.delete(); err != nil {
		fmt.Fprintf(os.Stderr, "berth monitor: %v\n", err)
	}
	m.stopDNS()
	m.mu.Lock()
	m.cg = nil
	m.mu.Unlock()
	m.out, m.copied = nil, nil
	return oom
}

// finish records the final exit, ex, and lets the stop requests that wait
// for it have their reply.
func (m *monitor) finish(ex runExit) {
	// The socket goes before the exit is recorded, as the cgroup.
	m.ln.Close()
	os.Remove(filepath.Join(m.dir, monitorSock))
	// So do the published ports: once the state says exited, a new start
	// (a recreate) may bind them.
	m.ports.release()

	m.mu.Lock()
	st := m.state
	st.Status = Exited
	st.ExitCode = ex.code
	st.OOMKilled = ex.oom
	st.Error = ""
	if ex.err != nil {
		st.Error = ex.err.Error()
	}
	st.Pid, st.MonitorPid, st.MonitorStart = 0, 0, 0
	st.FinishedAt = ex.at
	if err := writeState(m.dir, st); err != nil {
		fmt.Fprintf(os.Stderr, "berth monitor: record state: %v\n", err)
	}
	m.state = st
	m.mu.Unlock()
	close(m.exited)

	done := make(chan struct{})
	go func() { m.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// serve answers control connections until the listener is closed.
func (m *monitor) serve(ln *net.UnixListener) {
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(os.Stderr, "berth monitor: accept: %v\n", err)
			}
			return
		}
		m.conns.Add(1)
		go func() {
			defer m.conns.Done()
			defer conn.Close()
			m.handle(conn)
		}()
	}
}

func (m *monitor) handle(conn *net.UnixConn) {
	req, err := readControlRequest(conn)
	if err != nil {
		writeControlReply(conn, controlReply{Error: fmt.Sprintf("read request: %v", err)})
		return
	}
	var reply controlReply
	switch req.Op {
	case opStop:
		reply = m.stop(req)
	case opKill:
		reply = m.kill(syscall.Signal(req.Signal))
	case opPause:
		reply = m.pause()
	case opUnpause:
		reply = m.unpause()
	default:
		reply = controlReply{Error: fmt.Sprintf("unknown operation %q", req.Op)}
	}
	writeControlReply(conn, reply)
}

// stopAsked records a stop or a kill asked by the user (cancel: one that
// calls the restart policy off) and returns the process it is for, with its
// status: the process of the current run, or of the last one while the
// policy waits to restart it (restarting). A restart being launched is
// waited for: its process is the one to signal.
func (m *monitor) stopAsked(cancel bool) (*initProcess, State) {
	m.mu.Lock()
	m.stoppedByUser = true
	if cancel {
		m.cancelRestartLocked()
	}
	m.mu.Unlock()
	// Empty: only the wait for a launch under way matters.
	m.launching.Lock()
	//lint:ignore SA2001 the lock is taken to wait for a launch, not to guard data
	m.launching.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc, m.state
}

// sendSignal sends sig to process p. os.Process signals through a pidfd, so a
// signal after the exit cannot hit a recycled PID.
func sendSignal(p *initProcess, sig syscall.Signal) error {
	err := p.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return ErrNotRunning
	}
	return err
}

func (m *monitor) kill(sig syscall.Signal) controlReply {
	if sig <= 0 || sig > 64 {
		return controlReply{Error: fmt.Sprintf("invalid signal %d", sig)}
	}
	select {
	case <-m.exited:
		return controlReply{Code: codeNotRunning, Error: ErrNotRunning.Error()}
	default:
	}
	cancel := killCancelsRestart(m.spec, sig)
	p, st := m.stopAsked(cancel)
	st = m.thawToSignal(st)
	if st.Status == Restarting {
		// No process to signal: as docker, what the kill asked of the
		// policy is all it does. One that calls it off returns once the
		// container is recorded exited.
		if cancel {
			<-m.exited
		}
		return controlReply{}
	}
	if err := sendSignal(p, sig); err != nil {
		if errors.Is(err, ErrNotRunning) {
			return controlReply{Code: codeNotRunning, Error: err.Error()}
		}
		return controlReply{Error: fmt.Sprintf("kill: %v", err)}
	}
	return controlReply{}
}

// stop calls the restart policy off, sends the stop signal, SIGKILL after
// the grace period, and returns once the exit is recorded.
func (m *monitor) stop(req controlRequest) controlReply {
	sig := syscall.Signal(req.Signal)
	if sig == 0 {
		var err error
		if sig, err = stopSignal(m.spec); err != nil {
			sig = syscall.SIGTERM
			fmt.Fprintf(os.Stderr, "berth monitor: %v; sending SIGTERM\n", err)
		}
	}
	timeout := stopTimeout(m.spec, req.Timeout)
	p, st := m.stopAsked(true)
	st = m.thawToSignal(st)
	if sig != syscall.SIGKILL && st.Status == Running && !catchesSignal(st.Pid, sig) {
		// The kernel drops a signal that PID 1 of a namespace has no
		// handler for (pid_namespaces(7)): waiting out the grace period
		// would change nothing but the time it takes.
		fmt.Fprintf(os.Stderr, "berth monitor: stop: PID 1 has no handler for %v, which the kernel drops for a namespace's init: sending SIGKILL now\n", sig)
		sig, timeout = syscall.SIGKILL, 0
	}
	if err := sendSignal(p, sig); err != nil && !errors.Is(err, ErrNotRunning) {
		return controlReply{Error: fmt.Sprintf("stop: %v", err)}
	}
	grace := time.NewTimer(timeout)
	defer grace.Stop()
	select {
	case <-m.exited:
	case <-grace.C:
		if err := sendSignal(p, syscall.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
			return controlReply{Error: fmt.Sprintf("stop: %v", err)}
		}
		<-m.exited
	}
	m.mu.Lock()
	code := m.state.ExitCode
	m.mu.Unlock()
	return controlReply{ExitCode: &code}
}

// containerNetNS is the network namespace of the running container in dir.
func containerNetNS(dir string) (string, error) {
	st, err := readState(dir)
	if err != nil {
		return "", err
	}
	if st.Status != Running || !processAlive(st.MonitorPid, st.MonitorStart) || st.Pid <= 0 {
		return "", ErrNotRunning
	}
	return fmt.Sprintf("/proc/%d/ns/net", st.Pid), nil
}

// setupNetwork plugs the container's new network namespace into its
// networks, before its process starts.
func (m *monitor) setupNetwork(spec *Spec, pid int) error {
	if spec.Network == nil || !spec.newNetwork() {
		return nil
	}
	if m.roles.SetupNetwork == nil {
		return errors.New("set up the network: this berth has no network role")
	}
	if err := m.roles.SetupNetwork(pid, spec.Network); err != nil {
		return fmt.Errorf("set up the network: %w", err)
	}
	return nil
}

// startDNS starts the container's resolver (docker's 127.0.0.11) in its
// network namespace when the spec asks for one (nil otherwise); the
// namespace exists before the process (Spec.NetNS), so the resolver is up
// before the first query.
func (m *monitor) startDNS(spec *Spec, pid int) (io.Closer, error) {
	if spec.DNSServer == nil {
		return nil, nil
	}
	if m.roles.StartDNS == nil {
		return nil, errors.New("start DNS: this berth has no resolver role")
	}
	netns := spec.NetNS
	if netns == "" {
		netns = fmt.Sprintf("/proc/%d/ns/net", pid)
	}
	dns, err := m.roles.StartDNS(netns, spec.DNSServer)
	if err != nil {
		return nil, fmt.Errorf("start DNS: %w", err)
	}
	return dns, nil
}

func (m *monitor) stopDNS() {
	if m.dns != nil {
		m.dns.Close()
		m.dns = nil
	}
}

// catchesSignal reports whether process pid has a handler for sig, from the
// SigCgt mask of /proc/PID/status. When it cannot tell, it says yes, so that
// the stop takes the slow, graceful path.
func catchesSignal(pid int, sig syscall.Signal) bool {
	if pid <= 0 {
		return true
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return true
	}
	for line := range strings.Lines(string(data)) {
		if mask, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			v, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
			if err != nil {
				return true
			}
			return v&(1<<(uint(sig)-1)) != 0
		}
	}
	return true
}
