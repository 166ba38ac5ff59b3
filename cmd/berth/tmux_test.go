package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// tmuxUI drives a terminal UI in a tmux session of the script's own (a
// server on a socket in the script's work directory, killed when the
// script ends):
//
//	tmuxui start COMMAND   run the shell command in a 100×30 terminal
//	tmuxui keys KEY...     tmux send-keys
//	tmuxui wait REGEXP     until the screen matches (20s at most)
func tmuxUI(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: tmuxui start COMMAND | keys KEY... | wait REGEXP")
	}
	sock := ts.MkAbs("tmux.sock")
	tmux := func(a ...string) *exec.Cmd {
		cmd := exec.Command("tmux", append([]string{"-S", sock}, a...)...)
		cmd.Dir = ts.MkAbs(".")
		cmd.Env = os.Environ()
		for _, k := range []string{"PATH", "HOME", "BERTH_ROOT", "BERTH_IFPREFIX", "BERTH_ADDRESS_POOLS", "NO_COLOR"} {
			cmd.Env = append(cmd.Env, k+"="+ts.Getenv(k))
		}
		cmd.Env = append(cmd.Env, "TERM=xterm-256color")
		return cmd
	}
	switch args[0] {
	case "start":
		// A session from an earlier start ends first.
		tmux("kill-server").Run()
		ts.Defer(func() { tmux("kill-server").Run() })
		// The old server may take a moment to go: try again meanwhile.
		var out []byte
		var err error
		for range 50 {
			out, err = tmux("new-session", "-d", "-s", "ui", "-x", "100", "-y", "30", strings.Join(args[1:], " ")+"; echo exited $?; sleep 600").CombinedOutput()
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			ts.Fatalf("tmux new-session: %v: %s", err, out)
		}
	case "keys":
		if out, err := tmux(append([]string{"send-keys", "-t", "ui"}, args[1:]...)...).CombinedOutput(); err != nil {
			ts.Fatalf("tmux send-keys: %v: %s", err, out)
		}
	case "wait":
		re, err := regexp.Compile(args[1])
		ts.Check(err)
		var screen []byte
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if screen, err = tmux("capture-pane", "-p", "-t", "ui").Output(); err == nil && re.Match(screen) {
				return
			}
		}
		ts.Fatalf("the screen never matched %q:\n%s", args[1], screen)
	default:
		ts.Fatalf("tmuxui: unknown %q", args[0])
	}
}
