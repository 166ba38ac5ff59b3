package build

import (
	"context"
	"testing"
)

// BenchmarkRebuildNoChange: a rebuild of a 10-step Dockerfile (FROM, ENV,
// WORKDIR, two COPYs, two RUNs, LABEL, EXPOSE, CMD) with nothing changed:
// every step from the cache, no container run. Target: ≤ 100 ms.
func BenchmarkRebuildNoChange(b *testing.B) {
	e := newEnv(b)
	dir := newContext(b, cacheDockerfile, map[string]string{"a.txt": "A\n", "b.txt": "B\n"})
	opts := Options{ContextDir: dir, Tags: []string{"bench"}, Pull: PullNever}
	first, err := Build(context.Background(), e.store, e.rt, opts)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		img, err := Build(context.Background(), e.store, e.rt, opts)
		if err != nil {
			b.Fatal(err)
		}
		if img.ID != first.ID {
			b.Fatalf("rebuild made %s, not %s", img.ID, first.ID)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms")
}
