package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// This file is the child side of starting a container: `berth init`, already
// PID 1 of new namespaces (process_linux.go cloned it so), builds the root,
// becomes the user and execs the user's process. The protocol with the
// monitor is drawn in sync.go.

// defaultPath is docker's PATH for an image that sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// initMain is `berth init`. It never returns: it execs the user's process, or
// reports why it could not on fd 3 and exits 1.
func initMain() {
	// Capabilities, keepcaps and no_new_privs belong to a thread, and execve
	// keeps those of the thread that calls it. Locking for good makes every
	// step below, and the exec, run on this one thread.
	goruntime.LockOSThread()
	// Docker's umask for the container's process; the device nodes and
	// files made here set their modes explicitly.
	unix.Umask(0o022)

	// The fd came through exec without close-on-exec; with it, a successful
	// execve closes the socket and the monitor reads EOF: that is the
	// success signal.
	unix.CloseOnExec(initFD)
	conn := os.NewFile(initFD, "init-sync")
	// Read the request to its end (the monitor half-closes its side): a
	// decoder could leave the trailing newline unread, and closing a socket
	// with unread data makes the monitor read ECONNRESET, not EOF.
	var req initRequest
	data, err := io.ReadAll(conn)
	if err == nil {
		err = json.Unmarshal(data, &req)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth init: read request on fd %d: %v (berth init is started by a container's monitor, not by hand)\n", initFD, err)
		os.Exit(1)
	}
	err = func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("container init: panic: %v", p)
			}
		}()
		return startContainer(&req)
	}()
	if err == nil { // startContainer returns only on failure
		err = errors.New("container init: exec returned")
	}
	if werr := json.NewEncoder(conn).Encode(initError{Error: err.Error()}); werr != nil {
		fmt.Fprintf(os.Stderr, "berth init: %v (and reporting it failed: %v)\n", err, werr)
	}
	os.Exit(1)
}

// startContainer sets the container up in runc's order and execs its process.
// It returns only with the reason it could not, worded for the user.
func startContainer(req *initRequest) error {
	spec := &req.Spec
	if len(spec.Args) == 0 || spec.Args[0] == "" {
		return errors.New("no command specified")
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	// Read now, while the host's files are in view.
	filter, err := loadSeccomp(req.Dir, &spec.Security)
	if err != nil {
		return err
	}

	// First, the network namespace to join, if any: setns moves only this
	// thread, which is locked and is the one that execs the process, and
	// the sysfs mounted below must show this namespace's interfaces.
	if spec.NetNS != "" {
		if err := joinNetNS(spec.NetNS); err != nil {
			return err
		}
	}

	// Mounts made from here on must not propagate to the host: the clone
	// copied the host's mounts with their shared peer groups (systemd makes
	// "/" shared), and a mount in a shared one would appear on the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: mount: %w", err)
	}
	root, err := mountOverlay(spec.Layers, req.Dir)
	if err != nil {
		return err
	}
	if err := root.mountKernelFS(spec.Security.Privileged); err != nil {
		return err
	}
	if err := root.makeDevices(&spec.Security); err != nil {
		return err
	}
	if err := root.mountEtcFiles(spec, req.Dir); err != nil {
		return err
	}
	if err := root.mountSpec(spec.Mounts); err != nil {
		return err
	}
	usr, err := root.resolveUser(spec.User, spec.Security.GroupAdd)
	if err != nil {
		return err
	}
	if err := root.makeCwd(cwd, usr.Uid, usr.Gid); err != nil {
		return err
	}
	if spec.ReadonlyRootfs {
		if err := readonly(root.fd, false); err != nil {
			return fmt.Errorf("make the root read-only: %w", err)
		}
	}
	root.fd.Close()
	if err := pivotRoot(root.path); err != nil {
		return err
	}
	// Before /proc/sys turns read-only: the sysctls are the container's
	// own (its network and IPC namespaces), set through its own /proc.
	if err := setSysctls(spec.Security.Sysctls); err != nil {
		return err
	}
	if !spec.Security.Privileged && !spec.Security.SystemPathsUnconfined {
		if err := maskPaths(); err != nil {
			return err
		}
	}
	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return fmt.Errorf("set hostname %q: sethostname: %w", spec.Hostname, err)
	}
	if !spec.HostNetwork {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	env := processEnv(spec.Env, usr.Home)
	if err := setUlimits(spec.Security.Ulimits); err != nil {
		return err
	}
	if spec.Security.OOMScoreAdj != nil {
		if err := setOOMScoreAdj(*spec.Security.OOMScoreAdj); err != nil {
			return err
		}
	}
	late, err := confine(&spec.Security, usr, filter)
	if err != nil {
		return err
	}
	// As the user: a directory the user may not enter fails here, as docker.
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to working directory %s: %w", cwd, err)
	}
	path, err := lookPath(spec.Args[0], env)
	if err != nil {
		return err
	}
	if err := closeExecFrom(3); err != nil {
		return err
	}
	if err := late(); err != nil {
		return err
	}
	if err := unix.Exec(path, spec.Args, env); err != nil {
		return &os.PathError{Op: "exec", Path: path, Err: err} // `exec /app/run: exec format error`
	}
	return nil
}

// processEnv is Spec.Env with docker's PATH when it has none and the user's
// HOME when it has none.
func processEnv(env []string, home string) []string {
	out := append([]string{}, env...)
	if envValue(out, "PATH") == nil {
		out = append(out, "PATH="+defaultPath)
	}
	if envValue(out, "HOME") == nil {
		out = append(out, "HOME="+home)
	}
	return out
}

// envValue is the value of the last name=… entry, nil when there is none.
func envValue(env []string, name string) *string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
			return &v
		}
	}
	return nil
}

// lookPath finds the program as docker does, with the container's PATH in
// the container's root (the init's own environment is empty and the host's
// never applies), and with the messages of os/exec that docker users know:
// `exec: "nosuch": executable file not found in $PATH`.
func lookPath(name string, env []string) (string, error) {
	if p := envValue(env, "PATH"); p != nil {
		os.Setenv("PATH", *p)
	}
	path, err := exec.LookPath(name)
	// A match through "." or an empty PATH entry is what the image asked
	// for; os/exec only warns about it, for programs with a host PATH.
	if err != nil && !errors.Is(err, exec.ErrDot) {
		return "", err
	}
	return path, nil
}

// closeExecFrom marks every fd from min on close-on-exec, as runc does, so
// nothing the init or the Go runtime opened leaks into the container's
// process: only stdin, stdout and stderr cross the exec.
func closeExecFrom(min int) error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("close fds before exec: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < min {
			continue
		}
		// The directory's own fd is closed by now; fcntl fails on it, harmlessly.
		unix.CloseOnExec(fd)
	}
	return nil
}

// joinNetNS moves the calling thread into the network namespace at path.
func joinNetNS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("join network namespace %s: open: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("join network namespace %s: setns: %w", path, err)
	}
	return nil
}

// loopbackUp brings up lo in the container's new network namespace, which
// starts with lo down and nothing else: without it even 127.0.0.1 is
// unreachable.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: ioctl SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: ioctl SIOCSIFFLAGS: %w", err)
	}
	return nil
}
