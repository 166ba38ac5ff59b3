package runtime

import (
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	r := testRuntime(t)
	spec := shSpec(t, "stats", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo busy; exec sleep 1000")
	spec.Resources.MemoryLimit = 64 << 20
	run(t, r, spec)
	waitLog(t, r, spec.Name, "stdout busy")
	s, err := r.Stats(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if s.CPUNanos == 0 || s.MemoryBytes == 0 || s.MemoryLimit != 64<<20 {
		t.Errorf("stats %+v", s)
	}
	if err := r.Stop(t.Context(), spec.Name, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Stats(spec.Name); err == nil {
		t.Error("stats of a stopped container")
	}
}
