package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/image/imagetest"
)

func TestMain(m *testing.M) {
	// The test binary plays berth in the scripts, and berth's monitors are
	// the same binary re-executed: both paths go through main.
	testscript.Main(m, map[string]func(){"berth": main})
}

// TestScripts runs the CLI end to end from the .txtar files in testdata.
// Scripts that run containers start with `[!root] skip`; under
// BERTH_REQUIRE_ROOT (CI) not being root fails instead.
func TestScripts(t *testing.T) {
	if os.Getenv("BERTH_REQUIRE_ROOT") != "" {
		imagetest.NeedRoot(t)
	}
	busybox := filepath.Join(t.TempDir(), "busybox.tar")
	if err := os.WriteFile(busybox, imagetest.RootfsTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(t.TempDir(), "saved.tar")
	if err := os.WriteFile(saved, imagetest.DockerSaveTar(t, "saved/app:1.0", "sh", "-c", "echo from the saved image: FROM_IMAGE=$FROM_IMAGE"), 0o644); err != nil {
		t.Fatal(err)
	}
	// secprobe tries what docker's isolation forbids (security.txtar).
	secprobe := filepath.Join(t.TempDir(), "secprobe")
	build := exec.Command(goTool(t), "build", "-o", secprobe, "./testdata/secprobe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build secprobe: %v\n%s", err, out)
	}
	var scripts atomic.Int32
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			root := filepath.Join(env.WorkDir, ".berth")
			env.Setenv("BERTH_ROOT", root)
			env.Setenv("BUSYBOX_TAR", busybox)
			env.Setenv("SAVED_TAR", saved)
			env.Setenv("SECPROBE", secprobe)
			env.Setenv("NO_COLOR", "1")
			// Test interfaces are named bt-…, and each script picks its
			// subnets from a /24 of its own in 10.213.128.0/17.
			env.Setenv("BERTH_IFPREFIX", "bt-")
			env.Setenv("BERTH_ADDRESS_POOLS", fmt.Sprintf("10.213.%d.0/24:26", 128+scripts.Add(1)))
			env.Defer(func() { takeDown(env.T(), root) })
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitstate":  waitState,
			"waithealth": waitHealth,
			"waitlog":    waitLog,
			"waitport":   waitPort,
			"registry":   startRegistry,
			"tmuxui":     tmuxUI,
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "root":
				return os.Geteuid() == 0, nil
			case "cgroup1":
				_, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes")
				return err == nil, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

// takeDown takes down whatever projects a script left (containers,
// networks, rules), so that a failing script leaves nothing running and no
// interface on the machine.
func takeDown(t testscript.T, root string) {
	if _, err := os.Stat(root); err != nil {
		return
	}
	e, err := project.Open(project.Options{Root: root, IfPrefix: "bt-"})
	if err != nil {
		t.Log(err)
		return
	}
	names := map[string]bool{}
	if list, err := e.Projects(); err == nil {
		for _, p := range list {
			names[p.Name] = true
		}
	}
	if nets, err := e.Networks(); err == nil {
		for _, n := range nets {
			names[n.Project] = true
		}
	}
	zero := time.Duration(0)
	for name := range names {
		if err := e.Down(context.Background(), name, nil, project.DownOptions{Volumes: true, Timeout: &zero}); err != nil {
			t.Log(err)
		}
	}
}

// waitState is the script command `waitstate CONTAINER STATUS`: it polls the
// container's state until it has that status (running, exited…), for up to
// 20 seconds, so that scripts never sleep to wait.
func waitState(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitstate CONTAINER STATUS")
	}
	rt, err := runtime.New(filepath.Join(ts.Getenv("BERTH_ROOT"), "containers"))
	ts.Check(err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := rt.Get(args[0])
		if err == nil && string(c.State.Status) == args[1] {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				ts.Fatalf("container %s: %v", args[0], err)
			}
			ts.Fatalf("container %s is %s, not %s, after 20s", args[0], c.State.Status, args[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHealth is the script command `waithealth CONTAINER STATUS`: it polls
// the container's health until it is STATUS (healthy, unhealthy,
// starting), for up to 20 seconds.
func waitHealth(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waithealth CONTAINER STATUS")
	}
	rt, err := runtime.New(filepath.Join(ts.Getenv("BERTH_ROOT"), "containers"))
	ts.Check(err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := rt.Get(args[0])
		var health string
		if err == nil && c.State.Health != nil {
			health = string(c.State.Health.Status)
		}
		if health == args[1] {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				ts.Fatalf("container %s: %v", args[0], err)
			}
			ts.Fatalf("container %s is %s with health %q, not %s, after 20s", args[0], c.State.Status, health, args[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog is the script command `waitlog CONTAINER REGEXP`: it waits up to
// 20 seconds for a line of the container's log to match.
func waitLog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitlog CONTAINER REGEXP")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	rt, err := runtime.New(filepath.Join(ts.Getenv("BERTH_ROOT"), "containers"))
	ts.Check(err)
	errFound := errors.New("found")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = rt.ReadLogs(ctx, args[0], runtime.LogOptions{Tail: -1, Follow: true}, func(e runtime.LogEntry) error {
		if re.Match(e.Text) {
			return errFound
		}
		return nil
	})
	if !errors.Is(err, errFound) {
		ts.Fatalf("no line of %s matches %q (%v)", args[0], args[1], err)
	}
}

// waitPort is the script command `waitport PORT`: it waits up to 20 seconds
// for a program to hold TCP port PORT (a background server), found by
// failing to bind it, so that it is never connected to.
func waitPort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitport PORT")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		l, err := net.Listen("tcp4", "0.0.0.0:"+args[0])
		if err != nil {
			return
		}
		l.Close()
		if time.Now().After(deadline) {
			ts.Fatalf("nothing holds port %s after 20s", args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
