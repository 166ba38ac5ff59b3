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
// socket and records the exit:
//
//	Runtime.Start                 monitor                          init
//	  spawn, fd 3 = ready pipe ──►  cgroup, output pipes, listen
//	                                newInit ─────────────────────►  (new namespaces)
//	                                add to cgroup, run(request) ──►  mounts, exec
//	                                state: running
//	  ◄── {"pid":N} or {"error"} ── ready
//	  (Start returns; the CLI may exit)
//	                                copy output, serve control, wait
//	                                kill the cgroup's leftovers, drain output,
//	                                delete the cgroup, state: exited
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
	spec  Spec
	proc  *initProcess
	roles Roles
	// dns is the container's resolver, when its spec asks for one.
	dns io.Closer

	cg  *containerCgroup
	ln  *net.UnixListener
	out *outputCopier
	// copied is closed when out has copied both streams to their end.
	copied chan struct{}

	mu    sync.Mutex
	state State
	// exited is closed once the exit is recorded in state.json.
	exited chan struct{}
	conns  sync.WaitGroup
}

func monitorMain(roles Roles) {
	// The init gets SIGKILL when the thread that spawned it ends
	// (Pdeathsig). The main goroutine spawns it and lives as long as the
	// monitor: pin it to its thread.
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
	m := &monitor{dir: os.Args[2], exited: make(chan struct{}), roles: roles}
	os.Exit(m.run(ready))
}

// run starts the container and supervises it until it exits; the result is
// the monitor's exit status.
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
	m.supervise()
	return 0
}

func reportReady(ready *os.File, msg readyMessage) {
	data, _ := json.Marshal(msg)
	// Start may be gone (killed): the monitor goes on all the same.
	ready.Write(data)
	ready.Close()
}

// start gets the container's process running and records it. On failure
// nothing of this start is left: no process, no cgroup, no socket; the state
// records the error.
func (m *monitor) start() (pid int, err error) {
	spec, err := readSpec(m.dir)
	if err != nil {
		return 0, fmt.Errorf("read config: %w", err)
	}
	if spec.NetworkFrom != "" {
		// Resolved now, not at create: the other container's process is
		// the namespace, and it may have been restarted since.
		netns, err := containerNetNS(filepath.Join(filepath.Dir(m.dir), spec.NetworkFrom))
		if err != nil {
			return 0, fmt.Errorf("join the network of container %s: %w", spec.NetworkFrom, err)
		}
		spec.NetNS = netns
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
	logf, err := os.OpenFile(filepath.Join(m.dir, logFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return 0, fmt.Errorf("open log: %w", err)
	}
	lw := &logWriter{f: logf}

	cg, err := createCgroup(spec.Name, spec.Resources)
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

	out, stdout, stderr, err := newOutputCopier(lw)
	if err != nil {
		return 0, err
	}
	m.out, m.copied = out, make(chan struct{})
	go func() {
		defer close(m.copied)
		if err := out.run(); err != nil {
			fmt.Fprintf(os.Stderr, "berth monitor: copy output: %v\n", err)
		}
	}()
	defer func() {
		if err != nil {
			// The init is gone, and with it the pipes' other ends: the
			// copier ends at EOF after writing what it printed.
			<-m.copied
			out.close()
			logf.Close()
		}
	}()

	p, err := newInit("/proc/self/exe", stdout, stderr, spec.newNetwork())
	stdout.Close()
	stderr.Close()
	if err != nil {
		return 0, err
	}
	m.proc = p
	if err := cg.add(p.pid()); err != nil {
		p.cmd.Process.Kill()
		p.wait()
		return 0, err
	}
	if err := m.setupNetwork(p.pid()); err != nil {
		p.cmd.Process.Kill()
		p.wait()
		return 0, err
	}
	if err := m.startDNS(p.pid()); err != nil {
		p.cmd.Process.Kill()
		p.wait()
		return 0, err
	}
	if err := p.run(initRequest{Spec: spec, Dir: m.dir}); err != nil {
		m.stopDNS()
		// The init exits after reporting an error; a run that failed for
		// another reason (a broken sync socket) may have left it running.
		p.cmd.Process.Kill()
		p.wait()
		return 0, err
	}

	self, err := procStartTime(os.Getpid())
	if err != nil {
		p.cmd.Process.Kill()
		p.wait()
		return 0, fmt.Errorf("monitor start time: %w", err)
	}
	st = State{
		Status:       Running,
		Pid:          p.pid(),
		MonitorPid:   os.Getpid(),
		MonitorStart: self,
		CreatedAt:    st.CreatedAt,
		StartedAt:    time.Now().UTC(),
	}
	if err := writeState(m.dir, st); err != nil {
		p.cmd.Process.Kill()
		p.wait()
		return 0, fmt.Errorf("record state: %w", err)
	}
	m.state = st
	m.cg, m.ln = cg, ln
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
	st.ExitCode = startExitCode(err)
	if st.Status == Exited {
		st.FinishedAt = time.Now().UTC()
	}
	if werr := writeState(m.dir, st); werr != nil {
		fmt.Fprintf(os.Stderr, "berth monitor: record state: %v\n", werr)
	}
}

// startExitCode maps the init's message to docker's exit codes. The message
// crossed a process boundary as text (initError), so its words are all
// there is to go by.
func startExitCode(err error) int {
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

// supervise serves the control socket until the process exits, then
// cleans up and records the exit.
func (m *monitor) supervise() {
	go m.serve(m.ln)
	code, werr := m.proc.wait()
	if werr != nil {
		fmt.Fprintf(os.Stderr, "berth monitor: %v\n", werr)
	}
	// PID 1 of the namespace is gone, so the kernel kills the rest; the
	// cgroup catches any that escaped the namespace, and with them the
	// last writers of the output pipes.
	ctx := context.Background()
	if err := m.cg.killAll(ctx); err != nil {
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
	oom := m.cg.oomKilled()
	// Delete the cgroup and the socket before recording the exit: once the
	// state says exited, a new start may create them again, and this
	// monitor must not take them away from it.
	if err := m.cg.delete(); err != nil {
		fmt.Fprintf(os.Stderr, "berth monitor: %v\n", err)
	}
	m.ln.Close()
	os.Remove(filepath.Join(m.dir, monitorSock))
	m.stopDNS()

	m.mu.Lock()
	st := m.state
	st.Status = Exited
	st.ExitCode = code
	st.OOMKilled = oom
	st.Pid, st.MonitorPid, st.MonitorStart = 0, 0, 0
	st.FinishedAt = time.Now().UTC()
	if err := writeState(m.dir, st); err != nil {
		fmt.Fprintf(os.Stderr, "berth monitor: record state: %v\n", err)
	}
	m.state = st
	m.mu.Unlock()
	close(m.exited)

	// Let the stop requests that wait for the exit have their reply.
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
	default:
		reply = controlReply{Error: fmt.Sprintf("unknown operation %q", req.Op)}
	}
	writeControlReply(conn, reply)
}

// signal sends sig to the container's process. os.Process signals through
// a pidfd, so a signal after the exit cannot hit a recycled PID.
func (m *monitor) signal(sig syscall.Signal) error {
	err := m.proc.cmd.Process.Signal(sig)
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
	if err := m.signal(sig); err != nil {
		if errors.Is(err, ErrNotRunning) {
			return controlReply{Code: codeNotRunning, Error: err.Error()}
		}
		return controlReply{Error: fmt.Sprintf("kill: %v", err)}
	}
	return controlReply{}
}

// stop sends the stop signal, SIGKILL after the grace period, and returns
// once the exit is recorded.
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
	m.mu.Lock()
	pid := m.state.Pid
	m.mu.Unlock()
	if sig != syscall.SIGKILL && !catchesSignal(pid, sig) {
		// The kernel drops a signal that PID 1 of a namespace has no
		// handler for (pid_namespaces(7)): waiting out the grace period
		// would change nothing but the time it takes.
		fmt.Fprintf(os.Stderr, "berth monitor: stop: PID 1 has no handler for %v, which the kernel drops for a namespace's init: sending SIGKILL now\n", sig)
		sig, timeout = syscall.SIGKILL, 0
	}
	if err := m.signal(sig); err != nil && !errors.Is(err, ErrNotRunning) {
		return controlReply{Error: fmt.Sprintf("stop: %v", err)}
	}
	grace := time.NewTimer(timeout)
	defer grace.Stop()
	select {
	case <-m.exited:
	case <-grace.C:
		if err := m.signal(syscall.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
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
func (m *monitor) setupNetwork(pid int) error {
	if m.spec.Network == nil || !m.spec.newNetwork() {
		return nil
	}
	if m.roles.SetupNetwork == nil {
		return errors.New("set up the network: this berth has no network role")
	}
	if err := m.roles.SetupNetwork(pid, m.spec.Network); err != nil {
		return fmt.Errorf("set up the network: %w", err)
	}
	return nil
}

// startDNS starts the container's resolver (docker's 127.0.0.11) in its
// network namespace when the spec asks for one; the namespace exists before
// the process (Spec.NetNS), so the resolver is up before the first query.
func (m *monitor) startDNS(pid int) error {
	if m.spec.DNSServer == nil {
		return nil
	}
	if m.roles.StartDNS == nil {
		return errors.New("start DNS: this berth has no resolver role")
	}
	netns := m.spec.NetNS
	if netns == "" {
		netns = fmt.Sprintf("/proc/%d/ns/net", pid)
	}
	dns, err := m.roles.StartDNS(netns, m.spec.DNSServer)
	if err != nil {
		return fmt.Errorf("start DNS: %w", err)
	}
	m.dns = dns
	return nil
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

// outputCopier copies the container's stdout and stderr into its log, both
// in one loop over one epoll set. Two pipes lose the order between the
// streams; one reader that takes the pipes in the order epoll reports them
// ready (the order their first unread byte arrived) keeps it for output
// written further apart than the monitor takes to read, as
// `echo out; echo err >&2` is. (A goroutine per pipe on Go's poller does
// not: it wakes the readers of one batch in reverse order.)
type outputCopier struct {
	w       *logWriter
	epfd    int
	abortFD int    // an eventfd: abort ends run
	fds     [2]int // the read ends, -1 once at their end
	lines   [2]*lineSplitter
}

// newOutputCopier makes the pipes of the process's stdout and stderr and
// returns their write ends, blocking as a program expects its stdout.
func newOutputCopier(w *logWriter) (c *outputCopier, stdout, stderr *os.File, err error) {
	c = &outputCopier{w: w, epfd: -1, abortFD: -1, fds: [2]int{-1, -1},
		lines: [2]*lineSplitter{newLineSplitter(Stdout), newLineSplitter(Stderr)}}
	var writers [2]*os.File
	defer func() {
		if err != nil {
			c.close()
			for _, f := range writers {
				if f != nil {
					f.Close()
				}
			}
		}
	}()
	for i := range 2 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
			return nil, nil, nil, fmt.Errorf("output pipe: %w", err)
		}
		c.fds[i] = p[0]
		writers[i] = os.NewFile(uintptr(p[1]), c.lines[i].stream)
		if err := unix.SetNonblock(p[1], false); err != nil {
			return nil, nil, nil, fmt.Errorf("output pipe: %w", err)
		}
	}
	if c.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, nil, nil, fmt.Errorf("epoll: %w", err)
	}
	if c.abortFD, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, nil, nil, fmt.Errorf("eventfd: %w", err)
	}
	for _, fd := range []int{c.fds[0], c.fds[1], c.abortFD} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(c.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return nil, nil, nil, fmt.Errorf("epoll: %w", err)
		}
	}
	return c, writers[0], writers[1], nil
}

// run copies until both pipes reach their end (every writer closed them)
// or abort is called.
func (c *outputCopier) run() error {
	var events [3]unix.EpollEvent
	for c.fds[0] >= 0 || c.fds[1] >= 0 {
		n, err := unix.EpollWait(c.epfd, events[:], -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == c.abortFD {
				for _, ls := range c.lines {
					ls.end(c.w)
				}
				return nil
			}
			for i, fd := range c.fds {
				if fd >= 0 && int(ev.Fd) == fd {
					if err := c.read(i); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// read takes what pipe i holds, up to a few buffers: a stream that never
// pauses must not starve the other, which epoll reports next.
func (c *outputCopier) read(i int) error {
	ls := c.lines[i]
	for range 4 {
		n, err := unix.Read(c.fds[i], ls.space())
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return nil
		case err != nil:
			return fmt.Errorf("read %s: %w", ls.stream, err)
		case n == 0:
			ls.end(c.w)
			unix.EpollCtl(c.epfd, unix.EPOLL_CTL_DEL, c.fds[i], nil)
			unix.Close(c.fds[i])
			c.fds[i] = -1
			return nil
		}
		ls.wrote(c.w, n)
	}
	return nil
}

// abort makes run return without waiting for the pipes' end.
func (c *outputCopier) abort() {
	one := [8]byte{1}
	unix.Write(c.abortFD, one[:])
}

// close releases the descriptors; run must have returned.
func (c *outputCopier) close() {
	for i, fd := range c.fds {
		if fd >= 0 {
			unix.Close(fd)
			c.fds[i] = -1
		}
	}
	for _, fd := range []*int{&c.epfd, &c.abortFD} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}
