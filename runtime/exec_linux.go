package runtime

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	goruntime "runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// A process joins a running container (`berth exec`, healthchecks) through
// `berth enter`, the berth binary re-executed once more:
//
//	caller (CLI or monitor)                 berth enter (host PID namespace)
//	  pidfd of the container's PID 1
//	  sealed memfd copy of the binary
//	  start /proc/self/fd/N enter ────────►  not dumpable; reads fd 3
//	  ── enterRequest (JSON) ─────────────►  joins the cgroup
//	                                         locked thread: unshare(CLONE_FS),
//	                                         setns(pidfd, ipc|uts|net|pid|mnt)
//	                                         user, caps, no_new_privs (thread)
//	                                         fork+exec the command ──► PID n in
//	  ◄── enterReply{Pid} or {Error} ──────                          the container
//	  forwards signals ───────────────────►  forwards them to the command
//	  wait: exit code ◄────────────────────  exits with the command's code
//
// A multithreaded process cannot join a mount namespace while it shares
// its filesystem context (fs_struct) with other threads; Go's threads all
// share it. unshare(CLONE_FS) gives the locked thread a context of its own,
// after which setns may move that thread, and the fork made from it, into
// the container's mount namespace. The PID namespace applies to children
// only, which is why the command is forked rather than exec'd in place.
//
// The container must never reach the berth binary on the host
// (CVE-2019-5736: a process of the container opens /proc/PID/exe of a
// runtime process that entered it, and writes the host's binary through
// it). Two guards, as runc's: the helper is not dumpable, so a process of
// the container cannot open its /proc/PID files (exe, fd, mem) in the
// moment between the fork and the exec; and the helper runs from a sealed
// memfd copy of the binary, so even a process that could open its exe
// would find an in-memory file that cannot be written.

// ExecOptions is a process to run in a running container.
type ExecOptions struct {
	Args []string
	// Env is added to the container's environment (KEY=VALUE), over it.
	Env []string
	// User and Cwd replace the container's when set.
	User string
	Cwd  string
	// Stdin, Stdout and Stderr are the process's (nil: /dev/null). Only an
	// anonymous pipe is handed to the process as it is: any other file (the
	// caller's terminal, a file it redirected to, a socket) would let the
	// container read, truncate or chmod a host file, so berth gives the
	// process a pipe of its own and copies (stdio.go).
	Stdin, Stdout, Stderr *os.File
	// Privileged gives the process every capability (exec --privileged);
	// it keeps the container's seccomp filter and devices.
	Privileged bool
	// Detach lets the process run on when the caller goes; otherwise it is
	// killed with the caller (or by ExecProcess.Kill).
	Detach bool
	// TTY gives the process a terminal of the container's own devpts as its
	// stdin, stdout, stderr and controlling terminal, ConsoleSize big; the
	// caller talks to it through ExecProcess.Console. Stdin, Stdout and
	// Stderr are then unused.
	TTY         bool
	ConsoleSize unix.Winsize
}

// enterRequest is what `berth enter` reads on fd 3.
type enterRequest struct {
	Cgroups []string `json:"cgroups"`
	// Dir is the container's directory on the host (its seccomp filter).
	Dir string `json:"dir"`
	// Security is the container's, with exec's own --privileged.
	Security Security `json:"security,omitzero"`
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	User     string   `json:"user,omitempty"`
	Cwd      string   `json:"cwd,omitempty"`
	TTY      bool     `json:"tty,omitempty"`
	Detach   bool     `json:"detach,omitempty"`
	Rows     uint16   `json:"rows,omitempty"`
	Cols     uint16   `json:"cols,omitempty"`
}

// enterReply is the helper's one report: the command's PID, as the host
// sees it, or why it could not start it.
type enterReply struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// The helper's inherited files: the sync socket and the container's pidfd.
const (
	enterSyncFD  = 3
	enterPidfdFD = 4
)

// ExecProcess is a process started in a container by Exec.
type ExecProcess struct {
	// Pid is the process as the host sees it.
	Pid    int
	helper *exec.Cmd
	// Console is the terminal's master side, when ExecOptions.TTY: what
	// is written to it is typed, what is read from it was printed.
	Console *os.File
	// sync is the socket to the helper: closing it kills the process.
	sync *os.File
	// stdio copies what the process reads and writes (stdio.go).
	stdio *stdio
}

// Exec starts opts.Args in the running container name, in its namespaces
// and cgroup, with its environment, user and capabilities. An error means
// nothing started: the container is not running (ErrNotRunning), or the
// command could not be started (the message says why, as docker's:
// `exec: "nosuch": executable file not found in $PATH`).
func (r *Runtime) Exec(name string, opts ExecOptions) (*ExecProcess, error) {
	c, err := r.Get(name)
	if err != nil {
		return nil, err
	}
	if c.State.Status == Paused {
		return nil, fmt.Errorf("container %s is paused: unpause it first", name)
	}
	if c.State.Status != Running || c.State.Pid <= 0 {
		return nil, fmt.Errorf("container %s: %w", name, ErrNotRunning)
	}
	pidfd, err := unix.PidfdOpen(c.State.Pid, 0)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, ErrNotRunning)
	}
	pf := os.NewFile(uintptr(pidfd), "pidfd")
	defer pf.Close()
	// The pidfd names a process, not a number: read the state again to
	// know it is still the container's, and not a PID used again.
	st, err := readState(c.Dir)
	if err != nil || st.Status != Running || st.Pid != c.State.Pid || !processAlive(st.MonitorPid, st.MonitorStart) {
		return nil, fmt.Errorf("container %s: %w", name, ErrNotRunning)
	}
	return startEnter(r.exe, c.Dir, c.Spec, pf, opts)
}

// startEnter starts the helper, a copy of the berth binary at exe, for the
// container of spec in dir, whose PID 1 is pidfd, and returns once the
// command has started or failed to.
func startEnter(exe, dir string, spec Spec, pidfd *os.File, opts ExecOptions) (*ExecProcess, error) {
	if len(opts.Args) == 0 || opts.Args[0] == "" {
		return nil, errors.New("exec: no command specified")
	}
	req := enterRequest{
		Cgroups: cgroupPaths(spec.Name),
		Dir:     dir,
		Args:    opts.Args,
		Env:     append(append([]string{}, spec.Env...), opts.Env...),
		User:    spec.User,
		Cwd:     spec.Cwd,
		TTY:     opts.TTY,
		Detach:  opts.Detach,
		Rows:    opts.ConsoleSize.Row,
		Cols:    opts.ConsoleSize.Col,
		// The container's confinement, whatever the exec asks: only the
		// capabilities may grow, by --privileged, as docker's.
		Security: spec.Security,
	}
	if opts.Privileged {
		req.Security.CapAdd = []string{"ALL"}
	}
	if opts.User != "" {
		req.User = opts.User
	}
	if opts.Cwd != "" {
		req.Cwd = opts.Cwd
	}
	bin, err := sealedCopy(exe)
	if err != nil {
		return nil, err
	}
	defer bin.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec: socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "enter-sync")
	child := os.NewFile(uintptr(fds[1]), "enter-sync-child")
	defer func() {
		if parent != nil {
			parent.Close()
		}
	}()
	defer child.Close()

	cmd := &exec.Cmd{
		// The child resolves this path, its own copy of the fd, before
		// the exec closes it.
		Path:       fmt.Sprintf("/proc/self/fd/%d", bin.Fd()),
		Args:       []string{"berth", "enter"},
		Env:        []string{},
		ExtraFiles: []*os.File{child, pidfd},
		// A session of its own, as the init: the caller's terminal signals
		// reach the command only as the caller forwards them (or through
		// the TTY the command gets as its controlling terminal).
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	stdio, err := newStdio(opts.Stdin, opts.Stdout, opts.Stderr)
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.files()
	if err := cmd.Start(); err != nil {
		stdio.close()
		return nil, fmt.Errorf("exec: start berth enter: %w", err)
	}
	child.Close()
	stdio.started()
	reply, console, err := func() (enterReply, *os.File, error) {
		if err := json.NewEncoder(parent).Encode(req); err != nil {
			return enterReply{}, nil, err
		}
		return readEnterReply(parent)
	}()
	if err == nil && reply.Error != "" {
		err = startError(reply.Error)
	} else if err == nil && opts.TTY && console == nil {
		err = errors.New("exec: berth enter sent no terminal")
	} else if err != nil {
		err = fmt.Errorf("exec: berth enter: %w", err)
	}
	if err != nil {
		if console != nil {
			console.Close()
		}
		cmd.Process.Kill()
		cmd.Wait()
		stdio.close()
		return nil, err
	}
	// The helper keeps the command for as long as this end stays open.
	sync := parent
	parent = nil
	return &ExecProcess{Pid: reply.Pid, Console: console, helper: cmd, sync: sync, stdio: stdio}, nil
}

// readEnterReply reads the helper's reply line, and the terminal's master
// side that comes with it (SCM_RIGHTS) when there is one.
func readEnterReply(conn *os.File) (enterReply, *os.File, error) {
	var (
		data    []byte
		console *os.File
		buf     = make([]byte, 4096)
		oob     = make([]byte, unix.CmsgSpace(4))
	)
	for !bytes.Contains(data, []byte("\n")) {
		n, oobn, _, _, err := unix.Recvmsg(int(conn.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return enterReply{}, console, err
		}
		if n == 0 {
			return enterReply{}, console, io.ErrUnexpectedEOF
		}
		data = append(data, buf[:n]...)
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return enterReply{}, console, err
			}
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err != nil {
					continue
				}
				for _, fd := range fds {
					if console == nil {
						console = os.NewFile(uintptr(fd), "console")
					} else {
						unix.Close(fd)
					}
				}
			}
		}
	}
	var reply enterReply
	err := json.Unmarshal(data, &reply)
	return reply, console, err
}

// Signal sends sig to the process (through its helper, which forwards it).
func (p *ExecProcess) Signal(sig os.Signal) error { return p.helper.Process.Signal(sig) }

// Kill ends the process and what it started with SIGKILL.
func (p *ExecProcess) Kill() error { return p.sync.Close() }

// Wait waits for the process and returns its exit code (128+n when signal
// n ended it).
func (p *ExecProcess) Wait() (int, error) {
	err := p.helper.Wait()
	p.sync.Close()
	p.stdio.close()
	code, err := exitCode(p.helper.ProcessState, err)
	if err != nil {
		return code, fmt.Errorf("exec: %w", err)
	}
	return code, nil
}

// sealedCopy is a copy of the berth binary at exe in a sealed memfd: no
// process can write it, and it is not the file on the host's disk.
func sealedCopy(exe string) (*os.File, error) {
	src, err := os.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("exec: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:berth")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("exec: copy the berth binary: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("exec: seal the copy of the berth binary: %w", err)
	}
	return f, nil
}

// enterMain is `berth enter`. It reports on fd 3 and exits with the
// command's exit code, or 126 when the command could not start.
func enterMain() {
	// Everything below, the fork included, runs on this one thread: the
	// namespaces, credentials and capabilities it takes are the thread's.
	goruntime.LockOSThread()
	// Not dumpable: no process of the container may open this one's
	// /proc files, nor those of its fork before the exec (which shares
	// this memory and its flag).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "berth enter: prctl PR_SET_DUMPABLE: %v\n", err)
		os.Exit(126)
	}
	// Only stdin, stdout and stderr reach the command: the sync socket,
	// the pidfd, and whatever the caller's own parent left open without
	// close-on-exec (Go passes such files on) stay out of the container.
	if err := closeExecFrom(3); err != nil {
		fmt.Fprintf(os.Stderr, "berth enter: %v\n", err)
		os.Exit(126)
	}
	conn := os.NewFile(enterSyncFD, "enter-sync")
	var req enterRequest
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth enter: read request on fd %d: %v (berth enter is started by berth exec, not by hand)\n", enterSyncFD, err)
		os.Exit(126)
	}
	// Forward what the caller sends: the command may not have started
	// yet, so remember the signals until it has.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH)
	cmd, console, err := enterContainer(&req)
	reply := enterReply{}
	if err != nil {
		reply.Error = err.Error()
	} else {
		reply.Pid = cmd.Process.Pid
	}
	data, _ := json.Marshal(reply)
	var rights []byte
	if console != nil {
		rights = unix.UnixRights(int(console.Fd()))
	}
	if err := unix.Sendmsg(enterSyncFD, append(data, '\n'), rights, nil, 0); err != nil {
		fmt.Fprintf(os.Stderr, "berth enter: reply: %v\n", err)
	}
	if console != nil {
		console.Close()
	}
	if err != nil {
		os.Exit(126)
	}
	go func() {
		for sig := range sigs {
			cmd.Process.Signal(sig)
		}
	}()
	// The caller closes its end to kill the command (or is gone): end the
	// command's process group, what it started with it, then the command.
	// The command is not waited for yet, so its PID is still its own.
	if !req.Detach {
		go func() {
			io.Copy(io.Discard, conn)
			unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
			cmd.Process.Kill()
		}()
	}
	code, err := exitCode(cmd.ProcessState, cmd.Wait())
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth enter: %v\n", err)
	}
	os.Exit(code)
}

// enterContainer joins the container's cgroup and namespaces, takes its
// user and capabilities, and starts the command; with a terminal, whose
// master side it returns, when the request asks for one.
func enterContainer(req *enterRequest) (cmd *exec.Cmd, console *os.File, err error) {
	defer func() {
		if err != nil && console != nil {
			console.Close()
			console = nil
		}
	}()
	// The cgroup first, while the host's /sys/fs/cgroup is in view. The
	// whole helper moves: its threads count in pids_limit, as runc's do.
	self := strconv.Itoa(os.Getpid())
	for _, dir := range req.Cgroups {
		if err := writeCgroupFile(dir, "cgroup.procs", self); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, nil, ErrNotRunning
			}
			return nil, nil, fmt.Errorf("join the container's cgroup: %w", err)
		}
	}
	filter, err := loadSeccomp(req.Dir, &req.Security)
	if err != nil {
		return nil, nil, err
	}
	// The container's limits, as runc gives them to every process it
	// starts in a container; while the host's /proc has this process in it.
	if err := setUlimits(req.Security.Ulimits); err != nil {
		return nil, nil, err
	}
	if req.Security.OOMScoreAdj != nil {
		if err := setOOMScoreAdj(*req.Security.OOMScoreAdj); err != nil {
			return nil, nil, err
		}
	}
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return nil, nil, fmt.Errorf("unshare CLONE_FS: %w", err)
	}
	flags := unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWNET | unix.CLONE_NEWPID | unix.CLONE_NEWNS
	if err := unix.Setns(enterPidfdFD, flags); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, nil, ErrNotRunning
		}
		return nil, nil, fmt.Errorf("join the container's namespaces: setns: %w", err)
	}
	// setns put this thread at the root of the container's mount
	// namespace, the pivoted root: paths resolve as the container's do.
	rootFd, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open the container's root: %w", err)
	}
	root := &rootfs{path: "/", fd: rootFd}
	usr, err := root.resolveUser(req.User, req.Security.GroupAdd)
	rootFd.Close()
	if err != nil {
		return nil, nil, err
	}
	var pts *os.File
	if req.TTY {
		if console, pts, err = openConsole(usr.Uid, req.Rows, req.Cols); err != nil {
			return nil, nil, err
		}
		defer pts.Close()
	}
	env := processEnv(req.Env, usr.Home)
	cwd := req.Cwd
	if cwd == "" {
		cwd = "/"
	}

	late, err := confine(&req.Security, usr, filter)
	if err != nil {
		return nil, nil, err
	}
	// This thread's own working directory (CLONE_FS is unshared), which
	// the fork inherits; as the user, as the init's.
	if err := unix.Chdir(cwd); err != nil {
		return nil, nil, fmt.Errorf("chdir to working directory %s: %w", cwd, err)
	}
	path, err := lookPath(req.Args[0], env)
	if err != nil {
		return nil, nil, err
	}
	cmd = &exec.Cmd{
		Path:   path,
		Args:   req.Args,
		Env:    env,
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		// No Pdeathsig: os/exec's check that the parent is alive compares
		// PIDs across the PID namespace and would kill the command; the
		// helper kills it instead when its caller goes (enterMain).
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Setctty: req.TTY},
	}
	if pts != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	}
	// The filter is this thread's, and the fork made from it inherits it.
	if err := late(); err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	return cmd, console, nil
}

// openConsole opens a terminal in the container's own devpts (its
// /dev/pts, a mount point the container cannot replace), its slave side
// owned by uid as runc does, the size rows×cols.
func openConsole(uid int, rows, cols uint16) (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open a terminal: %w", err)
	}
	master = os.NewFile(uintptr(fd), "ptmx")
	defer func() {
		if err != nil {
			master.Close()
		}
	}()
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil || fs.Type != unix.DEVPTS_SUPER_MAGIC {
		return nil, nil, errors.New("open a terminal: /dev/pts/ptmx is not on a devpts")
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, nil, fmt.Errorf("open a terminal: unlock: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return nil, nil, fmt.Errorf("open a terminal: TIOCGPTPEER: %w", errno)
	}
	slave = os.NewFile(sfd, "pts")
	if rows > 0 && cols > 0 {
		unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}
	if err := unix.Fchown(int(sfd), uid, -1); err != nil {
		slave.Close()
		return nil, nil, fmt.Errorf("open a terminal: chown: %w", err)
	}
	return master, slave, nil
}
