package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadState feeds arbitrary bytes to the state file reader as a
// container's state.json. Neither the reader nor Get may panic. A state the
// reader accepts has a known status and no negative PID, and writes back to
// what was read; one it refuses makes Get return the container dead, with
// the file and the cause named, never an error. The seeds are in
// testdata/fuzz/FuzzReadState.
func FuzzReadState(f *testing.F) {
	r, err := New(filepath.Join(f.TempDir(), "containers"))
	if err != nil {
		f.Fatal(err)
	}
	c, err := r.Create(context.Background(), Spec{Name: "fuzz", Labels: map[string]string{"k": "v"}})
	if err != nil {
		f.Fatal(err)
	}
	again := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(c.Dir, stateFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		st, rerr := readState(c.Dir)
		got, err := r.Get("fuzz")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.Spec.Name != "fuzz" || got.Spec.Labels["k"] != "v" {
			t.Fatalf("Get lost the spec: %+v", got.Spec)
		}
		if rerr != nil {
			if got.State.Status != Dead || !strings.HasPrefix(got.State.Error, "state.json: ") {
				t.Fatalf("unreadable state (%v), Get = %s %q", rerr, got.State.Status, got.State.Error)
			}
			return
		}
		if !st.Status.valid() || st.Pid < 0 || st.MonitorPid < 0 {
			t.Fatalf("readState accepted %+v", st)
		}
		if !got.State.Status.valid() || (got.State.Status == Dead) != (st.Status == Dead) {
			t.Fatalf("state %s read as %s", st.Status, got.State.Status)
		}
		// What berth reads it can write back (the monitor does, at each
		// change), and it reads back the same.
		if err := writeState(again, st); err != nil {
			t.Fatalf("a state read cannot be written back: %v", err)
		}
		st2, err := readState(again)
		if err != nil {
			t.Fatalf("a state written cannot be read back: %v", err)
		}
		a, _ := json.Marshal(st)
		b, _ := json.Marshal(st2)
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip:\n%s\n%s", a, b)
		}
	})
}
