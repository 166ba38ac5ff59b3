package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Runtime manages the containers whose directories live under one folder
// (BERTH_ROOT/containers). Every method is safe to call from several
// processes at once for different containers; callers serialise changes to
// one project with the project lock.
type Runtime struct {
	dir string
	// exe is the berth binary the monitor runs as (`berth monitor DIR`):
	// this very binary. Tests may point it at a built berth.
	exe string
}

// New returns a Runtime over dir, creating it if needed, and removes what
// a killed berth left half-created or half-deleted there.
func New(dir string) (*Runtime, error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("container store: %w", err)
	}
	r := &Runtime{dir: dir, exe: "/proc/self/exe"}
	if err := r.removeStale(); err != nil {
		return nil, err
	}
	return r, nil
}

// Container is a snapshot of one container: its spec, its recorded state
// (as Get derives it) and its directory.
type Container struct {
	Spec  Spec
	State State
	Dir   string
	// orphaned: the state file says a monitor supervises the container,
	// but that monitor is gone; State shows the exit that followed, which
	// reapDead records.
	orphaned bool
}

// LogPath is the container's log file (one line per output line, CRI format).
func (c *Container) LogPath() string { return filepath.Join(c.Dir, logFile) }

// A container's directory is written under a temporary name and renamed
// into place, and renamed away before it is removed, so that a berth killed
// half-way never leaves a half container under a real name. The temporary
// names carry the PID and start time of the process at work: one whose
// process is gone is stale, and New and List remove it.
const (
	creatingPrefix = ".creating-"
	removingPrefix = ".removing-"
)

// tempName is a temporary name for container name, owned by this process.
func tempName(prefix, name string) (string, error) {
	start, err := procStartTime(os.Getpid())
	if err != nil {
		return "", err
	}
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s%d-%d-%s-%s", prefix, os.Getpid(), start, hex.EncodeToString(b[:]), name), nil
}

// staleTemp reports whether entry is a temporary name whose owner is gone.
func staleTemp(entry string) bool {
	var rest string
	var ok bool
	if rest, ok = strings.CutPrefix(entry, creatingPrefix); !ok {
		if rest, ok = strings.CutPrefix(entry, removingPrefix); !ok {
			return false
		}
	}
	parts := strings.SplitN(rest, "-", 3)
	if len(parts) != 3 {
		return true
	}
	pid, err1 := strconv.Atoi(parts[0])
	start, err2 := strconv.ParseUint(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return true
	}
	return !processAlive(pid, start)
}

func (r *Runtime) removeStale() error {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("container store: %w", err)
	}
	for _, e := range entries {
		if staleTemp(e.Name()) {
			if err := os.RemoveAll(filepath.Join(r.dir, e.Name())); err != nil {
				return fmt.Errorf("container store: remove stale %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// validName checks a container or volume name as docker does:
// [a-zA-Z0-9][a-zA-Z0-9_.-]*. No such name is "." or "..", or holds a "/",
// so none leads out of the store's folder.
func validName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > 200 {
		return fmt.Errorf("name %.20q…: longer than 200 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return fmt.Errorf("invalid name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
		}
	}
	return nil
}

// newID returns a random 64-hex-digit identity, as docker's.
func newID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Create writes the container's directory and config atomically; the
// container is Created and nothing runs. ErrExists if the name is taken.
// An empty Spec.ID is given a random one.
func (r *Runtime) Create(ctx context.Context, spec Spec) (_ *Container, err error) {
	if err := validName(spec.Name); err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	if err := spec.Security.Validate(spec.HostNetwork); err != nil {
		return nil, fmt.Errorf("create container %q: %w", spec.Name, err)
	}
	if spec.ID == "" {
		spec.ID = newID()
	}
	final := filepath.Join(r.dir, spec.Name)
	if _, err := os.Lstat(final); err == nil {
		return nil, fmt.Errorf("create container %q: %w", spec.Name, ErrExists)
	}
	name, err := tempName(creatingPrefix, spec.Name)
	if err != nil {
		return nil, fmt.Errorf("create container %q: %w", spec.Name, err)
	}
	tmp := filepath.Join(r.dir, name)
	if err := os.Mkdir(tmp, 0o711); err != nil {
		return nil, fmt.Errorf("create container %q: %w", spec.Name, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	st := State{Status: Created, CreatedAt: time.Now().UTC()}
	if err := writeJSONAtomic(filepath.Join(tmp, configFile), spec); err != nil {
		return nil, fmt.Errorf("create container %q: write config: %w", spec.Name, err)
	}
	if err := writeJSONAtomic(filepath.Join(tmp, labelsFile), spec.Labels); err != nil {
		return nil, fmt.Errorf("create container %q: write labels: %w", spec.Name, err)
	}
	if err := writeState(tmp, st); err != nil {
		return nil, fmt.Errorf("create container %q: write state: %w", spec.Name, err)
	}
	if err := writeSeccomp(tmp, &spec.Security); err != nil {
		return nil, fmt.Errorf("create container %q: %w", spec.Name, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, logFile), nil, 0o640); err != nil {
		return nil, fmt.Errorf("create container %q: create log: %w", spec.Name, err)
	}
	// RENAME_NOREPLACE: a plain rename would replace an empty directory.
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return nil, fmt.Errorf("create container %q: %w", spec.Name, ErrExists)
		}
		return nil, fmt.Errorf("create container %q: rename %s: %w", spec.Name, tmp, err)
	}
	return &Container{Spec: spec, State: st, Dir: final}, nil
}

// Get reads one container. ErrNotFound if there is none of that name.
//
// A container whose records cannot be read (state.json or config.json
// corrupt or missing) is returned all the same, Dead, with State.Error
// saying why ("state.json: unexpected end of JSON input"): its name comes
// from its directory and, when config.json is lost, its labels from
// labels.json, so that one bad file neither hides it from its project nor
// breaks every command that lists containers, and it can be removed.
//
// A container recorded as alive whose monitor is gone (killed, or the host
// rebooted) is returned as it ended, exited (see exitedWithMonitor). Get
// writes nothing: the next Start, Stop, Kill or Delete records that exit
// (reapDead).
func (r *Runtime) Get(name string) (*Container, error) {
	if validName(name) != nil {
		return nil, notFoundError{"container", name}
	}
	dir := filepath.Join(r.dir, name)
	if !isDir(dir) {
		return nil, notFoundError{"container", name}
	}
	var faults []string
	spec, err := readSpec(dir)
	if err != nil {
		faults = append(faults, fileFault(configFile, err))
		spec = Spec{Name: name, Labels: readLabels(dir)}
	} else if spec.Name != name {
		// Every caller acts on a container by c.Spec.Name: a config that
		// names another container must not lead them there, and is not
		// this container's.
		faults = append(faults, fmt.Sprintf("%s: names container %q, not %q", configFile, spec.Name, name))
		spec = Spec{Name: name, Labels: readLabels(dir)}
	}
	st, err := readState(dir)
	if err != nil {
		faults = append(faults, fileFault(stateFile, err))
		st = State{CreatedAt: createdTime(dir)}
	}
	c := &Container{Spec: spec, State: st, Dir: dir}
	if len(faults) > 0 {
		// Delete renames a container's directory away before it empties
		// it: a file found missing may be that.
		if !isDir(dir) {
			return nil, notFoundError{"container", name}
		}
		c.State.Status = Dead
		c.State.Error = strings.Join(faults, "; ")
		return c, nil
	}
	if st.Status.Alive() && !processAlive(st.MonitorPid, st.MonitorStart) {
		c.State = exitedWithMonitor(st)
		c.orphaned = true
	}
	return c, nil
}

// isDir reports whether path is a directory (not a link to one).
func isDir(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.IsDir()
}

// createdTime is when the container in dir was created, as well as its
// files tell without its state: config.json is written once, by Create.
func createdTime(dir string) time.Time {
	for _, p := range []string{filepath.Join(dir, configFile), filepath.Join(dir, labelsFile), dir} {
		if fi, err := os.Stat(p); err == nil {
			return fi.ModTime().UTC()
		}
	}
	return time.Time{}
}

// exitedWithMonitor is the state of a container recorded as alive whose
// monitor is gone. The monitor is the parent of the container's init and
// started it with a parent-death signal SIGKILL (newInit), and the init is
// PID 1 of its PID namespace, whose other processes the kernel kills with
// it: the container was killed with its monitor, exit code 137, as docker
// records a SIGKILL. A container waiting to restart had no process: its last
// exit stands. (One frozen by pause on cgroup v1 dies only once thawed,
// which reapDead does.)
func exitedWithMonitor(st State) State {
	if st.Status != Restarting {
		st.ExitCode = 128 + int(syscall.SIGKILL)
		st.Health = nil
	}
	st.Status = Exited
	st.Pid, st.MonitorPid, st.MonitorStart = 0, 0, 0
	return st
}

// List reads every container, sorted by name. Half-created directories left
// by a killed process are removed, not listed. A container whose files are
// broken is listed Dead (see Get): it fails neither List nor the others.
func (r *Runtime) List() ([]*Container, error) {
	if err := r.removeStale(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("container store: %w", err)
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		c, err := r.Get(e.Name())
		if err != nil {
			continue // removed meanwhile, or not a container's name
		}
		out = append(out, c)
	}
	return out, nil
}

// Start spawns the container's monitor, which starts the process in new
// namespaces, and returns once the process runs (exec succeeded) or with the
// reason it could not start, as the container's init reported it. A running
// or restarting container is left as it is; a created, exited or dead one
// starts again with its files (the upper directory) and its log kept.
func (r *Runtime) Start(ctx context.Context, name string) error {
	c, err := r.Get(name)
	if err != nil {
		return err
	}
	if c.orphaned {
		if err := r.reapDead(ctx, c, syscall.SIGKILL); err != nil {
			return err
		}
	}
	switch c.State.Status {
	case Running, Restarting, Paused:
		// As docker: its monitor restarts it, or is about to.
		return nil
	case Dead:
		return fmt.Errorf("start container %q: it is dead (%s): remove it", name, c.State.Error)
	}
	_, err = r.spawnMonitor(ctx, c)
	return err
}

// spawnMonitor runs `berth monitor DIR` in a session of its own (no signal
// of the caller's terminal reaches it) and without a parent-death signal, so
// that it outlives the berth command that started it, and waits for its
// report on the ready pipe.
func (r *Runtime) spawnMonitor(ctx context.Context, c *Container) (int, error) {
	logf, err := os.OpenFile(filepath.Join(c.Dir, monitorLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return 0, fmt.Errorf("start container %q: %w", c.Spec.Name, err)
	}
	defer logf.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("start container %q: ready pipe: %w", c.Spec.Name, err)
	}
	defer readyR.Close()
	cmd := &exec.Cmd{
		Path: r.exe,
		Args: []string{"berth", "monitor", c.Dir},
		// Not the caller's folder: a monitor must not keep a user's
		// project directory (or the mount it is on) busy.
		Dir: c.Dir,
		// One P and an eager GC from the first allocation on: the
		// monitor's memory counts once per container.
		Env:         append(os.Environ(), "GOMAXPROCS=1", "GOGC=25"),
		Stdout:      logf,
		Stderr:      logf,
		ExtraFiles:  []*os.File{readyW}, // fd 3 == readyFD
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return 0, fmt.Errorf("start container %q: spawn monitor: %w", c.Spec.Name, err)
	}

	defer context.AfterFunc(ctx, func() { readyR.SetReadDeadline(time.Now()) })()
	data, rerr := io.ReadAll(readyR)
	var msg readyMessage
	if rerr == nil && len(data) > 0 {
		rerr = json.Unmarshal(data, &msg)
	}
	switch {
	case rerr == nil && msg.Error != "":
		// The monitor has cleaned up and exits: reap it. Its message is
		// the init's own words, which the user must read as they are.
		cmd.Wait()
		return 0, errors.New(msg.Error)
	case rerr == nil && msg.Pid > 0:
		// The monitor lives on; this process may exit, or go on without
		// ever waiting for it.
		cmd.Process.Release()
		return msg.Pid, nil
	case ctx.Err() != nil:
		// Given up: the monitor's death takes the container's process
		// with it (Pdeathsig); clean what they leave.
		cmd.Process.Kill()
		cmd.Wait()
		if c2, err := r.Get(c.Spec.Name); err == nil && c2.orphaned {
			r.reapDead(context.Background(), c2, syscall.SIGKILL)
		} else if cg, _ := loadCgroup(c.Spec.Name); cg != nil {
			// Killed before it recorded the start.
			cg.killAll(context.Background())
			cg.delete()
			os.Remove(filepath.Join(c.Dir, monitorSock))
		}
		return 0, fmt.Errorf("start container %q: %w", c.Spec.Name, ctx.Err())
	default:
		werr := cmd.Wait()
		return 0, fmt.Errorf("start container %q: the monitor ended without a report (%v): see %s",
			c.Spec.Name, werr, filepath.Join(c.Dir, monitorLog))
	}
}

// Stop sends the stop signal, then SIGKILL after timeout (the spec's
// StopTimeout when timeout < 0), and returns when the process has exited.
// It calls the restart policy off: nothing restarts the container after.
// Stopping a container that is not running is not an error.
func (r *Runtime) Stop(ctx context.Context, name string, timeout time.Duration) error {
	return r.stop(ctx, name, controlRequest{Op: opStop, Timeout: timeout}, true)
}

// stop has the container's monitor carry out req and waits for its reply.
// A container whose monitor is gone is reaped, its exit recorded, when
// record is set; a removal has no use for the record, and on a full disk
// could not write it.
func (r *Runtime) stop(ctx context.Context, name string, req controlRequest, record bool) error {
	var silent time.Time
	for {
		c, err := r.Get(name)
		if err != nil {
			return err
		}
		if c.orphaned {
			if !record {
				return nil
			}
			return r.reapDead(ctx, c, syscall.SIGKILL)
		}
		switch c.State.Status {
		case Created, Exited:
			return nil
		}
		reply, err := callControl(ctx, c.Dir, req)
		if errors.Is(err, errNoMonitor) && c.State.Status == Dead {
			// What a dead container runs is unknown; with no monitor to
			// answer for it, nothing can be stopped.
			return nil
		}
		if errors.Is(err, errNoMonitor) {
			// The monitor is finishing (it closes its socket before it
			// records the exit) or just died: look again.
			if err := r.waitAgain(ctx, &silent); err != nil {
				return fmt.Errorf("stop container %q: %w", name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("stop container %q: %w", name, err)
		}
		if err := reply.err(); err != nil && !errors.Is(err, ErrNotRunning) {
			return fmt.Errorf("stop container %q: %w", name, err)
		}
		return nil
	}
}

// monitorSilence is how long a live monitor may leave its socket unanswered
// (it closes it just before it records the exit) before it counts as hung.
const monitorSilence = 10 * time.Second

// waitAgain waits a little before the state is looked at again, while the
// monitor does not answer; since is when that started (set on first call).
func (r *Runtime) waitAgain(ctx context.Context, since *time.Time) error {
	if since != nil {
		if since.IsZero() {
			*since = time.Now()
		} else if time.Since(*since) > monitorSilence {
			return errNoMonitor
		}
	}
	t := time.NewTimer(10 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Kill sends sig to the container's process. ErrNotRunning if it does not
// run. SIGKILL or the stop signal calls the restart policy off, as Stop
// (see restart.go).
func (r *Runtime) Kill(ctx context.Context, name string, sig syscall.Signal) error {
	var silent time.Time
	for {
		c, err := r.Get(name)
		if err != nil {
			return err
		}
		if c.orphaned {
			return r.reapDead(ctx, c, sig)
		}
		switch c.State.Status {
		case Created, Exited:
			return fmt.Errorf("kill container %q: %w", name, ErrNotRunning)
		}
		reply, err := callControl(ctx, c.Dir, controlRequest{Op: opKill, Signal: int(sig)})
		if errors.Is(err, errNoMonitor) && c.State.Status == Dead {
			return fmt.Errorf("kill container %q: %w", name, ErrNotRunning)
		}
		if errors.Is(err, errNoMonitor) {
			if err := r.waitAgain(ctx, &silent); err != nil {
				return fmt.Errorf("kill container %q: %w", name, err)
			}
			continue
		}
		if err == nil {
			err = reply.err()
		}
		if err != nil {
			return fmt.Errorf("kill container %q: %w", name, err)
		}
		return nil
	}
}

// reapDead handles a container whose monitor is gone (c.orphaned): it
// sends sig to every process left in its cgroup and, for SIGKILL, waits for
// them to go, removes the cgroup and records the exit Get derived (see
// exitedWithMonitor).
func (r *Runtime) reapDead(ctx context.Context, c *Container, sig syscall.Signal) error {
	cg, err := loadCgroup(c.Spec.Name)
	if err != nil {
		return fmt.Errorf("container %q: %w", c.Spec.Name, err)
	}
	if cg != nil {
		// A container paused when its monitor died is still frozen: a
		// signal reaches it only once it thaws.
		cg.thaw()
		if sig != syscall.SIGKILL {
			if err := cg.signal(sig); err != nil {
				return fmt.Errorf("container %q: %w", c.Spec.Name, err)
			}
			return nil
		}
		if err := cg.killAll(ctx); err != nil {
			return fmt.Errorf("container %q: %w", c.Spec.Name, err)
		}
		if err := cg.delete(); err != nil {
			return fmt.Errorf("container %q: %w", c.Spec.Name, err)
		}
	} else if sig != syscall.SIGKILL {
		return nil
	}
	os.Remove(filepath.Join(c.Dir, monitorSock))
	st := c.State
	if !st.FinishedAt.After(st.StartedAt) {
		// Killed with its monitor, at a time nothing recorded: now is
		// the first moment it is known.
		st.FinishedAt = time.Now().UTC()
	}
	if err := writeState(c.Dir, st); err != nil {
		return fmt.Errorf("container %q: record state: %w", c.Spec.Name, err)
	}
	return nil
}

// stopBroken stops a dead container (one whose records cannot be read)
// through its monitor, if a monitor still answers on its control socket,
// and waits for that monitor to exit. The monitor's PID comes from the
// socket's peer credentials, since the state cannot say it.
func (r *Runtime) stopBroken(ctx context.Context, c *Container) error {
	pid, start, ok := socketPeer(c.Dir)
	if !ok {
		return nil
	}
	reply, err := callControl(ctx, c.Dir, controlRequest{Op: opStop, Signal: int(syscall.SIGKILL)})
	if errors.Is(err, errNoMonitor) {
		return nil
	}
	if err == nil {
		err = reply.err()
	}
	if err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	var since time.Time
	for processAlive(pid, start) {
		if err := r.waitAgain(ctx, &since); err != nil {
			return err
		}
	}
	return nil
}

// socketPeer is the PID and start time of the process that listens on the
// control socket of the container in dir; ok false when none does.
func socketPeer(dir string) (pid int, start uint64, ok bool) {
	var conn *net.UnixConn
	err := viaDirFD(dir, monitorSock, func(path string) error {
		var err error
		conn, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
		return err
	})
	if err != nil {
		return 0, 0, false
	}
	defer conn.Close()
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var cred *unix.Ucred
	cerr := raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cerr != nil || err != nil || cred.Pid <= 0 {
		return 0, 0, false
	}
	start, err = procStartTime(int(cred.Pid))
	if err != nil {
		return 0, 0, false
	}
	return int(cred.Pid), start, true
}

// Delete kills the container if it still runs and removes its cgroup and
// directory, writing nothing on the way (a teardown must finish on a full
// disk). A container that is already gone is success.
func (r *Runtime) Delete(ctx context.Context, name string) error {
	c, err := r.Get(name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case c.State.Status == Dead:
		// Its records are broken: stop what a monitor may still run,
		// then remove whatever is left, whatever the stop could do.
		if err := r.stopBroken(ctx, c); err != nil && ctx.Err() != nil {
			return fmt.Errorf("remove container %q: %w", name, err)
		}
	case c.State.Status.Alive():
		// Nothing is written here: the directory goes next. A monitor
		// that is gone (orphaned) left its processes to the cgroup,
		// which removeRemains kills.
		if err := r.stop(ctx, name, controlRequest{Op: opStop, Signal: int(syscall.SIGKILL)}, false); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("remove container %q: %w", name, err)
		}
		// The monitor has recorded the exit, or found no room to; let it
		// finish (it has nothing left to do but exit) before its
		// directory goes.
		var since time.Time
		for processAlive(c.State.MonitorPid, c.State.MonitorStart) {
			if err := r.waitAgain(ctx, &since); errors.Is(err, errNoMonitor) {
				break
			} else if err != nil {
				return fmt.Errorf("remove container %q: wait for its monitor: %w", name, err)
			}
		}
	}
	return r.removeRemains(ctx, c)
}

// removeRemains kills what is left of container c's processes, removes its
// cgroup, and removes its directory under a temporary name, so that a
// removal cut short never leaves half a container under its real name.
func (r *Runtime) removeRemains(ctx context.Context, c *Container) error {
	name := c.Spec.Name
	cg, err := loadCgroup(name)
	if err != nil {
		return fmt.Errorf("remove container %q: %w", name, err)
	}
	if cg != nil {
		// Frozen processes (a pause whose monitor died) take SIGKILL
		// only once thawed.
		cg.thaw()
		if err := cg.killAll(ctx); err != nil {
			return fmt.Errorf("remove container %q: %w", name, err)
		}
		if err := cg.delete(); err != nil {
			return fmt.Errorf("remove container %q: %w", name, err)
		}
	}
	tmp, err := tempName(removingPrefix, name)
	if err != nil {
		return fmt.Errorf("remove container %q: %w", name, err)
	}
	tmp = filepath.Join(r.dir, tmp)
	if err := os.Rename(c.Dir, tmp); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove container %q: %w", name, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove container %q: %w", name, err)
	}
	return nil
}
