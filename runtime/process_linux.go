package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// This file is the parent side of starting a container: the monitor spawns
// the init in new namespaces, sends it the request once the host side is
// ready, and learns from the sync socket whether the user's process runs.
// The protocol and its drawing are in sync.go; the child side is init_linux.go.

// initCloneFlags are the namespaces every container gets. There is no user
// namespace: the container's root is the host's root with a reduced set of
// capabilities, as with docker's defaults.
const initCloneFlags = syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC |
	syscall.CLONE_NEWPID | syscall.CLONE_NEWNET

// cloneFlags are initCloneFlags less the network namespace when the
// container joins one (a path, or the host's).
func cloneFlags(newNet bool) uintptr {
	if newNet {
		return initCloneFlags
	}
	return initCloneFlags &^ syscall.CLONE_NEWNET
}

// initProcess is a container init being started: spawned, waiting for its request.
type initProcess struct {
	cmd *exec.Cmd
	// sync is the monitor's end of the socketpair; the init has the other
	// end as fd 3.
	sync *os.File
}

// startError is the init's own report of why the container could not start,
// worded for the user (`exec: "nosuch": executable file not found in $PATH`).
// Its text is the init's message verbatim: no prefix is added, so the monitor
// can record it as the container's State.Error as it is.
type startError string

func (e startError) Error() string { return string(e) }

// newInit spawns exe (normally "/proc/self/exe") as `berth init` in new
// mount, UTS, IPC, PID and network namespaces. The child is PID 1 of its PID
// namespace and blocks reading fd 3 until run sends it the request, so the
// caller can put it in its cgroup and set up its network first.
//
// stdout and stderr receive what the init and then the container's process
// write (nil means /dev/null); stdin is /dev/null: berth gives containers no
// terminal.
//
// The child gets SIGKILL when its parent dies (Pdeathsig), so a monitor that
// is killed takes its container with it rather than leaving an orphan that
// nothing records. The kernel ties that signal to the *thread* that forked,
// not to the process: if the forking thread exits while the monitor lives on,
// the container is killed. Go ends an OS thread when a goroutine locked to it
// returns without unlocking, and may otherwise retire threads at will, so
// the caller must call newInit from a goroutine locked with
// runtime.LockOSThread that stays locked for as long as the container runs.
//
// Setsid makes the init a session and process group leader with no
// controlling terminal, as runc does: a Ctrl-C typed in the terminal that
// started berth must not reach containers, only what berth forwards.
func newInit(exe string, stdout, stderr *os.File, newNet bool) (*initProcess, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start container init: socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "init-sync")
	child := os.NewFile(uintptr(fds[1]), "init-sync-child")
	// The child has its own copy once started; ours must go so that the
	// monitor sees EOF when the init closes its end (by exec or by exiting).
	defer child.Close()

	cmd := &exec.Cmd{
		Path: exe,
		Args: []string{"berth", "init"},
		// A non-nil empty slice: nil would pass the monitor's environment
		// on, and none of it belongs in the container. The user's
		// environment travels in the Spec.
		Env: []string{},
		// Stdin nil is /dev/null, opened by os/exec.
		ExtraFiles: []*os.File{child}, // fd 3 == initFD
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: cloneFlags(newNet),
			Pdeathsig:  syscall.SIGKILL,
			Setsid:     true,
		},
	}
	// A nil *os.File stored in an io.Writer is not a nil interface, and
	// os/exec would try to write through it: only set the files we have.
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	if err := cmd.Start(); err != nil {
		parent.Close()
		return nil, fmt.Errorf("start container init: %w", err)
	}
	return &initProcess{cmd: cmd, sync: parent}, nil
}

// pid is the init's PID as the host sees it; after a successful run it is the
// container's process, PID 1 inside.
func (p *initProcess) pid() int { return p.cmd.Process.Pid }

// run sends initRequest{Spec, Dir} and waits: nil when the exec succeeded
// (EOF on the socket), else an error carrying the init's message (initError)
// verbatim, e.g. `exec: "nosuch": executable file not found in $PATH`.
// After an error the init has exited (status 1): call wait to reap it.
//
// EOF without a message also results when the init dies before it could
// report (SIGKILL, a fatal runtime error): the protocol cannot tell that from
// a successful exec, and wait then reports the exit status.
func (p *initProcess) run(req initRequest) error {
	defer p.sync.Close()
	if err := json.NewEncoder(p.sync).Encode(req); err != nil {
		return fmt.Errorf("send request to container init: %w", err)
	}
	// Half-close: the init reads one JSON value, but a clean end of stream
	// also lets it notice a truncated request instead of waiting forever.
	if err := unix.Shutdown(int(p.sync.Fd()), unix.SHUT_WR); err != nil {
		return fmt.Errorf("send request to container init: shutdown: %w", err)
	}
	msg, err := io.ReadAll(p.sync)
	if err != nil {
		return fmt.Errorf("read container init's report: %w", err)
	}
	if len(msg) == 0 {
		return nil
	}
	var ie initError
	if err := json.Unmarshal(msg, &ie); err != nil || ie.Error == "" {
		return fmt.Errorf("container init sent an unreadable report: %q", msg)
	}
	return startError(ie.Error)
}

// wait waits for the process and returns its exit code as docker reports it
// (128+signal when killed by a signal).
func (p *initProcess) wait() (int, error) {
	err := p.cmd.Wait()
	p.sync.Close() // already closed by run, unless run was never called
	code, err := exitCode(p.cmd.ProcessState, err)
	if err != nil {
		return code, fmt.Errorf("container process: %w", err)
	}
	return code, nil
}

// exitCode is the exit code of a waited-for process as docker reports it:
// 128+n when signal n ended it. ps is nil when the wait failed with err.
func exitCode(ps *os.ProcessState, err error) (int, error) {
	if ps == nil {
		return -1, fmt.Errorf("wait: %w", err)
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return -1, errors.New("wait: no wait status")
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}
