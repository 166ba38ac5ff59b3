package main

import (
	"bufio"
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUpCtrlC: Ctrl-C on an attached `berth up` stops every container
// gracefully (each gets its stop signal and runs its handler), then berth
// exits 130 and the containers stay, exited, for `ps -a` and `logs`.
func TestUpCtrlC(t *testing.T) {
	dir, root := testProject(t, `name: ctrlc
services:
  db:
    image: bb
    command: ["sh", "-c", "trap 'echo db got TERM; exit 0' TERM; echo db ready; while true; do sleep 0.05; done"]
  web:
    image: bb
    depends_on: [db]
    command: ["sh", "-c", "trap 'echo web got TERM; exit 0' TERM; echo web ready; while true; do sleep 0.05; done"]
`)

	up := berthCmd(t, dir, root, "up")
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	up.Stderr = &stderr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var seen []string
	waitFor := func(want string) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("berth up ended before %q; stdout %q, stderr:\n%s", want, seen, stderr.String())
				}
				seen = append(seen, l)
				if strings.Contains(l, want) {
					return
				}
			case <-timeout:
				t.Fatalf("no %q after 20s; stdout %q", want, seen)
			}
		}
	}
	waitFor("web-1  | web ready")
	if err := up.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	err = up.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Fatalf("berth up after Ctrl-C: %v, want exit status 130; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "Gracefully stopping...") {
		t.Errorf("stderr lacks the graceful stop notice:\n%s", stderr.String())
	}
	ps := runBerth(t, dir, root, "ps", "-a")
	for _, name := range []string{"ctrlc-db-1", "ctrlc-web-1"} {
		if !strings.Contains(ps, name) || strings.Contains(ps, " running") {
			t.Errorf("after Ctrl-C, want %s kept and exited:\n%s", name, ps)
		}
	}
	logs := runBerth(t, dir, root, "logs")
	for _, want := range []string{"db got TERM", "web got TERM"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q: each container must get its stop signal\n%s", want, logs)
		}
	}
}
