package runtime

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
	}{
		{"SIGTERM", syscall.SIGTERM},
		{"TERM", syscall.SIGTERM},
		{"sigint", syscall.SIGINT},
		{"int", syscall.SIGINT},
		{" SIGQUIT ", syscall.SIGQUIT},
		{"9", syscall.SIGKILL},
		{"SIGUSR1", syscall.SIGUSR1},
		{"HUP", syscall.SIGHUP},
		{"SIGWINCH", syscall.SIGWINCH},
		{"SIGRTMIN", 34},
		{"RTMIN+3", 37},
		{"SIGRTMAX", 64},
		{"SIGRTMAX-2", 62},
		{"64", 64},
	} {
		got, err := parseSignal(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "SIGNOPE", "0", "65", "-1", "SIGRTMIN-1", "SIGRTMAX+1", "RTMIN+x", "SIG"} {
		if got, err := parseSignal(in); err == nil {
			t.Errorf("parseSignal(%q) = %d, want an error", in, got)
		}
	}
}

func TestStopDefaults(t *testing.T) {
	if sig, err := stopSignal(Spec{}); err != nil || sig != syscall.SIGTERM {
		t.Errorf("default stop signal %d %v", sig, err)
	}
	if sig, err := stopSignal(Spec{StopSignal: "SIGINT"}); err != nil || sig != syscall.SIGINT {
		t.Errorf("stop signal SIGINT: %d %v", sig, err)
	}
	if _, err := stopSignal(Spec{StopSignal: "SIGBOGUS"}); err == nil {
		t.Error("bogus stop signal accepted")
	}
	for _, tc := range []struct {
		spec    time.Duration
		timeout time.Duration
		want    time.Duration
	}{
		{0, -1, 10 * time.Second},
		{3 * time.Second, -1, 3 * time.Second},
		{3 * time.Second, 0, 0},
		{3 * time.Second, time.Second, time.Second},
	} {
		if got := stopTimeout(Spec{StopTimeout: tc.spec}, tc.timeout); got != tc.want {
			t.Errorf("stopTimeout(%v, %v) = %v, want %v", tc.spec, tc.timeout, got, tc.want)
		}
	}
}

// longDir is a directory whose path is longer than a unix socket address
// can hold.
func longDir(t *testing.T) string {
	dir := t.TempDir()
	for len(dir) < 150 {
		dir = filepath.Join(dir, strings.Repeat("d", 40))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestControlSocketLongPath(t *testing.T) {
	dir := longDir(t)
	ln, err := listenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := os.Stat(filepath.Join(dir, monitorSock)); err != nil {
		t.Fatalf("socket not in the directory: %v", err)
	}
	served := make(chan controlRequest, 1)
	go func() {
		conn, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		req, err := readControlRequest(conn)
		if err != nil {
			return
		}
		served <- req
		code := 143
		writeControlReply(conn, controlReply{ExitCode: &code})
	}()
	reply, err := callControl(context.Background(), dir, controlRequest{Op: opStop, Signal: 2, Timeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	if reply.ExitCode == nil || *reply.ExitCode != 143 || reply.err() != nil {
		t.Errorf("reply %+v", reply)
	}
	if req := <-served; req.Op != opStop || req.Signal != 2 || req.Timeout != -1 {
		t.Errorf("request %+v", req)
	}

	// A stale socket is replaced by the next listener.
	ln.Close()
	ln2, err := listenControl(dir)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	ln2.Close()
}

func TestControlNoMonitor(t *testing.T) {
	dir := t.TempDir()
	if _, err := callControl(context.Background(), dir, controlRequest{Op: opKill, Signal: 9}); !errors.Is(err, errNoMonitor) {
		t.Errorf("no socket: %v", err)
	}
	// A socket nobody listens on any more (a dead monitor's).
	ln, err := listenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := callControl(context.Background(), dir, controlRequest{Op: opKill, Signal: 9}); !errors.Is(err, errNoMonitor) {
		t.Errorf("stale socket: %v", err)
	}
}

func TestControlCallCancel(t *testing.T) {
	dir := t.TempDir()
	ln, err := listenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		// Accept and never answer, as a monitor waiting for a slow stop.
		conn, err := ln.Accept()
		if err == nil {
			defer conn.Close()
			var b [1]byte
			conn.(*net.UnixConn).Read(b[:])
			<-done
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := callControl(ctx, dir, controlRequest{Op: opStop}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("call past its deadline: %v", err)
	}
}

func TestControlReplyErrors(t *testing.T) {
	if err := (controlReply{Code: codeNotRunning, Error: "x"}).err(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("not-running reply: %v", err)
	}
	if err := (controlReply{Error: "boom"}).err(); err == nil || err.Error() != "boom" {
		t.Errorf("error reply: %v", err)
	}
	if err := (controlReply{}).err(); err != nil {
		t.Errorf("ok reply: %v", err)
	}
}
