package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The monitor answers for its container on a unix socket in the container's
// directory (monitor.sock). One connection carries one request and one
// reply, each a line of JSON:
//
//	client                                  monitor
//	  ── {"op":"stop","signal":0,"timeout":-1} ──►  sends the stop signal,
//	                                               SIGKILL after the timeout,
//	  ◄── {"exitCode":143} ─────────────────────    once the exit is recorded
//	  ── {"op":"kill","signal":9} ────────────►
//	  ◄── {} ───────────────────────────────────    once the signal is sent
//
// A reply with "error" carries the monitor's message, and "code" a sentinel
// the client maps back (codeNotRunning → ErrNotRunning). Later ops (exec,
// health) keep the same framing; one that streams can go on using the
// connection after the reply, and one that needs the client's terminal can
// receive file descriptors on it (SCM_RIGHTS).

// Control operations.
const (
	opStop    = "stop"
	opKill    = "kill"
	opPause   = "pause"
	opUnpause = "unpause"
)

// Reply codes that map to sentinels.
const codeNotRunning = "not-running"

type controlRequest struct {
	Op string `json:"op"`
	// Signal is the signal of kill, and the first signal of stop (0: the
	// spec's StopSignal).
	Signal int `json:"signal,omitempty"`
	// Timeout is stop's grace period before SIGKILL (< 0: the spec's
	// StopTimeout, 10s when unset).
	Timeout time.Duration `json:"timeout,omitempty"`
}

type controlReply struct {
	Error    string `json:"error,omitempty"`
	Code     string `json:"code,omitempty"`
	ExitCode *int   `json:"exitCode,omitempty"`
}

func (r controlReply) err() error {
	if r.Code == codeNotRunning {
		return ErrNotRunning
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	return nil
}

// errNoMonitor: nothing listens on the container's control socket.
var errNoMonitor = errors.New("the container's monitor does not answer")

// viaDirFD runs fn with a path to name inside dir that is short whatever the
// length of dir: /proc/self/fd/N/name, N an O_PATH descriptor of dir. A unix
// socket path holds at most 108 bytes, and BERTH_ROOT may be deep.
func viaDirFD(dir, name string, fn func(path string) error) error {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	return fn("/proc/self/fd/" + strconv.Itoa(fd) + "/" + name)
}

// listenControl binds the control socket of the container in dir,
// replacing a stale one.
func listenControl(dir string) (*net.UnixListener, error) {
	if err := os.Remove(filepath.Join(dir, monitorSock)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var l *net.UnixListener
	err := viaDirFD(dir, monitorSock, func(path string) error {
		var err error
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", filepath.Join(dir, monitorSock), err)
	}
	// The listener knows the socket by its /proc/self/fd path, whose
	// descriptor is closed by now: unlinking through it on Close could hit
	// another directory. The monitor removes the socket by its real path.
	l.SetUnlinkOnClose(false)
	return l, nil
}

// callControl sends req to the monitor of the container in dir and waits
// for its reply, or for ctx. errNoMonitor when no monitor listens.
func callControl(ctx context.Context, dir string, req controlRequest) (controlReply, error) {
	var conn net.Conn
	err := viaDirFD(dir, monitorSock, func(path string) error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "unix", path)
		return err
	})
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) {
			return controlReply{}, errNoMonitor
		}
		return controlReply{}, fmt.Errorf("connect to monitor: %w", err)
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })()
	data, err := json.Marshal(req)
	if err != nil {
		return controlReply{}, err
	}
	if _, err := conn.Write(append(data, '\n')); err != nil {
		return controlReply{}, fmt.Errorf("send %s to monitor: %w", req.Op, err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return controlReply{}, cerr
		}
		return controlReply{}, fmt.Errorf("read monitor's reply to %s: %w", req.Op, err)
	}
	var reply controlReply
	if err := json.Unmarshal(line, &reply); err != nil {
		return controlReply{}, fmt.Errorf("monitor's reply to %s: %w", req.Op, err)
	}
	return reply, nil
}

// readControlRequest reads the one request of a control connection.
func readControlRequest(conn net.Conn) (controlRequest, error) {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	// The request is small: read it byte-wise rather than through a
	// buffered reader, so that an op that streams afterwards owns the rest.
	var buf []byte
	var b [1]byte
	for len(buf) < 64*1024 {
		if _, err := conn.Read(b[:]); err != nil {
			return controlRequest{}, err
		}
		if b[0] == '\n' {
			var req controlRequest
			err := json.Unmarshal(buf, &req)
			return req, err
		}
		buf = append(buf, b[0])
	}
	return controlRequest{}, errors.New("control request too long")
}

func writeControlReply(conn net.Conn, reply controlReply) error {
	data, err := json.Marshal(reply)
	if err != nil {
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Write(append(data, '\n'))
	return err
}

// parseSignal reads a signal as docker's stop_signal and kill --signal
// take it: "SIGTERM", "TERM", "term", "15", "SIGRTMIN+3".
func parseSignal(s string) (syscall.Signal, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return 0, errors.New("empty signal")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q: out of range 1-64", s)
		}
		return syscall.Signal(n), nil
	}
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	// Real-time signals: glibc reserves 32 and 33, so SIGRTMIN is 34.
	for _, rt := range []struct {
		name      string
		base, dir int
	}{{"SIGRTMIN", 34, 1}, {"SIGRTMAX", 64, -1}} {
		rest, ok := strings.CutPrefix(s, rt.name)
		if !ok {
			continue
		}
		off := 0
		if rest != "" {
			sign := "+"
			if rt.dir < 0 {
				sign = "-"
			}
			num, ok := strings.CutPrefix(rest, sign)
			n, err := strconv.Atoi(num)
			if !ok || err != nil || n < 0 || n > 30 {
				return 0, fmt.Errorf("invalid signal %q", s)
			}
			off = n
		}
		return syscall.Signal(rt.base + rt.dir*off), nil
	}
	if n := unix.SignalNum(s); n != 0 {
		return n, nil
	}
	return 0, fmt.Errorf("invalid signal %q", s)
}

// stopSignal is the spec's StopSignal, SIGTERM when unset.
func stopSignal(spec Spec) (syscall.Signal, error) {
	if spec.StopSignal == "" {
		return syscall.SIGTERM, nil
	}
	sig, err := parseSignal(spec.StopSignal)
	if err != nil {
		return 0, fmt.Errorf("stop signal: %w", err)
	}
	return sig, nil
}

// stopTimeout is the grace period of a stop: timeout when ≥ 0, else the
// spec's StopTimeout, else 10s as docker.
func stopTimeout(spec Spec, timeout time.Duration) time.Duration {
	switch {
	case timeout >= 0:
		return timeout
	case spec.StopTimeout > 0:
		return spec.StopTimeout
	default:
		return 10 * time.Second
	}
}
