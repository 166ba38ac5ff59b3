package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCreateGetList(t *testing.T) {
	root := filepath.Join(t.TempDir(), "containers")
	r, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := time.Now().UTC()
	c, err := r.Create(ctx, Spec{Name: "hello-web-1", Args: []string{"sh"}, Labels: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Status != Created || c.State.CreatedAt.Before(before.Add(-time.Second)) || c.Dir != filepath.Join(root, "hello-web-1") {
		t.Errorf("created %+v", c)
	}
	if len(c.Spec.ID) != 64 {
		t.Errorf("no ID given: %q", c.Spec.ID)
	}
	if c.LogPath() != filepath.Join(c.Dir, "container.log") {
		t.Errorf("LogPath %s", c.LogPath())
	}
	got, err := r.Get("hello-web-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.ID != c.Spec.ID || got.Spec.Labels["k"] != "v" || got.State.Status != Created {
		t.Errorf("Get = %+v", got)
	}
	if _, err := r.Create(ctx, Spec{Name: "hello-web-1"}); !errors.Is(err, ErrExists) {
		t.Errorf("second Create: %v", err)
	}
	if _, err := r.Create(ctx, Spec{Name: "../x"}); err == nil {
		t.Error("Create accepted a name with a slash")
	}
	if _, err := r.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope): %v", err)
	} else if err.Error() != "no such container: nope" {
		t.Errorf("message %q", err)
	}
	if _, err := r.Get(".."); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(..): %v", err)
	}
	if _, err := r.Create(ctx, Spec{Name: "a-db-1"}); err != nil {
		t.Fatal(err)
	}
	list, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Spec.Name)
	}
	if strings.Join(names, ",") != "a-db-1,hello-web-1" {
		t.Errorf("List: %v", names)
	}

	// Nothing runs: stop is a no-op, kill says so, delete removes it.
	if err := r.Stop(ctx, "a-db-1", -1); err != nil {
		t.Errorf("Stop of a created container: %v", err)
	}
	if err := r.Kill(ctx, "a-db-1", syscall.SIGTERM); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Kill of a created container: %v", err)
	}
	if err := r.Delete(ctx, "a-db-1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "a-db-1"); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := r.Get("a-db-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Errorf("store holds %v", entries)
	}
}

func TestStaleTemporariesRemoved(t *testing.T) {
	root := filepath.Join(t.TempDir(), "containers")
	r, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	// One of a process that is gone (no PID is above pid_max), one of
	// this live process: only the first is stale.
	stale := filepath.Join(root, fmt.Sprintf("%s%d-%d-%s-%s", creatingPrefix, 1<<22+1, 5, "00", "web"))
	staleRemoving := filepath.Join(root, fmt.Sprintf("%s%d-%d-%s-%s", removingPrefix, 1<<22+1, 5, "00", "db"))
	own, err := tempName(creatingPrefix, "busy")
	if err != nil {
		t.Fatal(err)
	}
	own = filepath.Join(root, own)
	for _, d := range []string{stale, staleRemoving, own} {
		if err := os.MkdirAll(filepath.Join(d, "upper"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, configFile), []byte(`{"name":"web"}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list, err := r.List()
	if err != nil || len(list) != 0 {
		t.Fatalf("List = %v, %v", list, err)
	}
	for _, d := range []string{stale, staleRemoving} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s kept: %v", filepath.Base(d), err)
		}
	}
	if _, err := os.Stat(own); err != nil {
		t.Errorf("a live process's temporary was removed: %v", err)
	}
	// New cleans up too.
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := New(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New kept %s: %v", filepath.Base(stale), err)
	}
}

func TestExitedDerivedWhenMonitorGone(t *testing.T) {
	r, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := fakeContainer(t, r, "ghost", true)
	if got, _ := r.Get("ghost"); got.State.Status != Running {
		t.Fatalf("status %s, want running (its monitor is this process)", got.State.Status)
	}
	// Same PID, another start time: the monitor was replaced by a
	// recycled PID. Its container died with it (Pdeathsig SIGKILL).
	st := c.State
	st.Status, st.MonitorPid, st.Pid = Running, os.Getpid(), 12345
	st.MonitorStart = 1
	if err := writeState(c.Dir, st); err != nil {
		t.Fatal(err)
	}
	got, err := r.Get("ghost")
	if err != nil || got.State.Status != Exited || got.State.ExitCode != 137 || got.State.Pid != 0 || !got.orphaned {
		t.Fatalf("Get = %+v, %v; want exited (137)", got, err)
	}
	// Get only derives it: the file still says running.
	if rec, _ := readState(c.Dir); rec.Status != Running {
		t.Errorf("Get wrote the state: %+v", rec)
	}
	// Stopping it records the exit (nothing left to kill: it has no
	// cgroup).
	if err := r.Stop(context.Background(), "ghost", -1); err != nil {
		t.Fatal(err)
	}
	rec, err := readState(c.Dir)
	if err != nil || rec.Status != Exited || rec.ExitCode != 137 || rec.MonitorPid != 0 || rec.FinishedAt.IsZero() {
		t.Errorf("recorded after Stop: %+v, %v", rec, err)
	}
	if got, _ := r.Get("ghost"); got.State.Status != Exited || got.State.ExitCode != 137 || got.orphaned {
		t.Errorf("after Stop: %+v", got)
	}

	// One waiting to restart had no process: its last exit code stands.
	c = fakeContainer(t, r, "looper", false)
	if err := writeState(c.Dir, State{Status: Restarting, ExitCode: 3, MonitorPid: os.Getpid(), MonitorStart: 1}); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Get("looper"); got.State.Status != Exited || got.State.ExitCode != 3 {
		t.Errorf("restarting with its monitor gone: %+v", got.State)
	}
}
