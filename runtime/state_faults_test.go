package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestBrokenFilesMakeADeadContainer breaks the files of one container in
// each way a disk or a hand can, and checks that Get says so (dead, with
// the file and the cause), that List still lists every container, that the
// container keeps its name and labels, and that Delete removes it.
func TestBrokenFilesMakeADeadContainer(t *testing.T) {
	labels := map[string]string{"com.docker.compose.project": "p", "com.docker.compose.service": "web"}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		// why is the whole of State.Error.
		why string
		// noLabels: the labels are lost with the files.
		noLabels bool
	}{
		{"state truncated", truncate(stateFile), "state.json: unexpected end of JSON input", false},
		{"state garbage", write(stateFile, "\x00\x01garbage"), "state.json: invalid character '\\x00' looking for beginning of value", false},
		{"state null", write(stateFile, "null"), `state.json: unknown status ""`, false},
		{"state of unknown status", write(stateFile, `{"status":"zombie"}`), `state.json: unknown status "zombie"`, false},
		{"state with a negative pid", write(stateFile, `{"status":"running","monitorPid":-1}`), "state.json: negative pid", false},
		{"state missing", remove(stateFile), "state.json: no such file or directory", false},
		{"state is a directory", func(t *testing.T, dir string) {
			remove(stateFile)(t, dir)
			if err := os.Mkdir(filepath.Join(dir, stateFile), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "state.json: is a directory", false},
		{"config truncated", truncate(configFile), "config.json: unexpected end of JSON input", false},
		{"config missing", remove(configFile), "config.json: no such file or directory", false},
		{"config of another container", write(configFile, `{"name":"other"}`), `config.json: names container "other", not "victim"`, false},
		{"config and labels lost", func(t *testing.T, dir string) {
			truncate(configFile)(t, dir)
			remove(labelsFile)(t, dir)
		}, "config.json: unexpected end of JSON input", true},
		{"everything lost", func(t *testing.T, dir string) {
			truncate(configFile)(t, dir)
			truncate(labelsFile)(t, dir)
			truncate(stateFile)(t, dir)
		}, "config.json: unexpected end of JSON input; state.json: unexpected end of JSON input", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(filepath.Join(t.TempDir(), "containers"))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for _, name := range []string{"a-before", "victim", "z-after"} {
				if _, err := r.Create(ctx, Spec{Name: name, Args: []string{"sh"}, Labels: labels}); err != nil {
					t.Fatal(err)
				}
			}
			dir := filepath.Join(r.dir, "victim")
			tt.damage(t, dir)

			c, err := r.Get("victim")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if c.State.Status != Dead || c.State.Error != tt.why {
				t.Errorf("Get = %s %q, want dead %q", c.State.Status, c.State.Error, tt.why)
			}
			if c.Spec.Name != "victim" || c.Dir != dir {
				t.Errorf("name %q, dir %s", c.Spec.Name, c.Dir)
			}
			if got := c.Spec.Labels["com.docker.compose.project"]; (got == "p") == tt.noLabels {
				t.Errorf("project label %q (labels lost: %v)", got, tt.noLabels)
			}
			if c.State.CreatedAt.IsZero() {
				t.Error("no creation time")
			}

			list, err := r.List()
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var got []string
			for _, c := range list {
				got = append(got, c.Spec.Name+":"+string(c.State.Status))
			}
			if strings.Join(got, ",") != "a-before:created,victim:dead,z-after:created" {
				t.Errorf("List = %v", got)
			}

			// Nothing runs it (no monitor answers): stop has nothing to
			// do, kill says it does not run, start refuses with why.
			if err := r.Stop(ctx, "victim", 0); err != nil {
				t.Errorf("Stop: %v", err)
			}
			if err := r.Kill(ctx, "victim", syscall.SIGKILL); !errors.Is(err, ErrNotRunning) {
				t.Errorf("Kill: %v", err)
			}
			if err := r.Start(ctx, "victim"); err == nil || !strings.Contains(err.Error(), "dead ("+tt.why+")") {
				t.Errorf("Start: %v", err)
			}
			if err := r.Delete(ctx, "victim"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("directory left: %v", err)
			}
			if _, err := r.Get("victim"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get after Delete: %v", err)
			}
			// Its name is free again.
			if _, err := r.Create(ctx, Spec{Name: "victim"}); err != nil {
				t.Errorf("Create after Delete: %v", err)
			}
		})
	}
}

func truncate(file string) func(*testing.T, string) {
	return write(file, "")
}

func write(file, content string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func remove(file string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, file)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGetIgnoresWhatIsNotAContainer: a stray file, or a link, under a
// container's name is no container, for Get and List alike.
func TestGetIgnoresWhatIsNotAContainer(t *testing.T) {
	r, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "stray"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	real, err := r.Create(context.Background(), Spec{Name: "real"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real.Dir, filepath.Join(r.dir, "alias")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"stray", "alias"} {
		if _, err := r.Get(name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%s): %v", name, err)
		}
	}
	list, err := r.List()
	if err != nil || len(list) != 1 || list[0].Spec.Name != "real" {
		t.Errorf("List = %v, %v", list, err)
	}
}

// TestCreateKeepsACopyOfTheLabels: labels.json holds the labels, written
// with config.json, so that a lost config.json loses no project.
func TestCreateKeepsACopyOfTheLabels(t *testing.T) {
	r, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Create(context.Background(), Spec{Name: "web", Labels: map[string]string{"a": "1", "b": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := readLabels(c.Dir); len(got) != 2 || got["a"] != "1" || got["b"] != "2" {
		t.Errorf("labels.json holds %v", got)
	}
}

// TestDeleteBrokenContainerWithLiveMonitor: state.json is truncated while
// the container runs. ps must say so, and down must still stop it through
// its monitor (found by the control socket, since the state cannot name
// it) and leave no process, cgroup or directory.
func TestDeleteBrokenContainerWithLiveMonitor(t *testing.T) {
	r := testRuntime(t)
	c := run(t, r, shSpec(t, "broken", "while true; do sleep 0.05; done"))
	other := run(t, r, shSpec(t, "fine", "while true; do sleep 0.05; done"))
	if err := os.WriteFile(filepath.Join(c.Dir, stateFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := r.Get(c.Spec.Name)
	if err != nil || got.State.Status != Dead || got.State.Error != "state.json: unexpected end of JSON input" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if pid, _, ok := socketPeer(c.Dir); !ok || pid != c.State.MonitorPid {
		t.Errorf("socketPeer = %d, %v; the monitor is %d", pid, ok, c.State.MonitorPid)
	}
	if err := r.Delete(context.Background(), c.Spec.Name); err != nil {
		t.Fatal(err)
	}
	if processAlive(c.State.MonitorPid, c.State.MonitorStart) {
		t.Error("its monitor lives on")
	}
	if syscall.Kill(c.State.Pid, 0) == nil && !procStateIs(c.State.Pid, 'Z') {
		t.Error("its process lives on")
	}
	checkNoCgroup(t, c.Spec.Name)
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory left: %v", err)
	}
	if o, _ := r.Get(other.Spec.Name); o.State.Status != Running {
		t.Errorf("the other container is %s", o.State.Status)
	}
}

// TestKilledMonitorRecordsExited137: a monitor killed with SIGKILL takes its
// container with it; Get shows exited (137) at once without writing, and
// the next action on the container records it.
func TestKilledMonitorRecordsExited137(t *testing.T) {
	r := testRuntime(t)
	c := run(t, r, shSpec(t, "sigkilled", "while true; do sleep 0.05; done"))
	if err := syscall.Kill(c.State.MonitorPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got := waitStatus(t, r, c.Spec.Name, Exited)
	if got.State.ExitCode != 137 || got.State.Pid != 0 {
		t.Errorf("Get = %+v", got.State)
	}
	if rec, err := readState(c.Dir); err != nil || rec.Status != Running {
		t.Errorf("recorded %+v, %v: Get must not write", rec, err)
	}
	if err := r.Stop(context.Background(), c.Spec.Name, 0); err != nil {
		t.Fatal(err)
	}
	rec, err := readState(c.Dir)
	if err != nil || rec.Status != Exited || rec.ExitCode != 137 || rec.MonitorPid != 0 || rec.FinishedAt.Before(rec.StartedAt) {
		t.Errorf("recorded %+v, %v", rec, err)
	}
	checkNoCgroup(t, c.Spec.Name)
}
