package runtime

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime/image/imagetest"
)

// BenchmarkContainerRun: one container running /bin/true, from Create to its
// recorded exit, then Delete — the median of 25 runs (docker: 22 ms here),
// with docker's default seccomp profile compiled and installed.
func BenchmarkContainerRun(b *testing.B) { benchContainerRun(b, Security{}) }

// BenchmarkContainerRunNoSeccomp is the same container with
// seccomp=unconfined: the difference is what the filter costs a start
// (compiled once per start, in the init).
func BenchmarkContainerRunNoSeccomp(b *testing.B) {
	benchContainerRun(b, Security{SeccompUnconfined: true})
}

func benchContainerRun(b *testing.B, sec Security) {
	imagetest.NeedRoot(b)
	layer := imagetest.Rootfs(b)
	rt, err := New(filepath.Join(b.TempDir(), "containers"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var runs []time.Duration
	for i := range 25 {
		spec := Spec{Name: "bench-true-" + string(rune('a'+i)), Hostname: "bench", Layers: []string{layer}, Args: []string{"/bin/true"}, Security: sec}
		start := time.Now()
		if _, err := rt.Create(ctx, spec); err != nil {
			b.Fatal(err)
		}
		if err := rt.Start(ctx, spec.Name); err != nil {
			b.Fatal(err)
		}
		for {
			c, err := rt.Get(spec.Name)
			if err != nil {
				b.Fatal(err)
			}
			if c.State.Status == Exited {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		runs = append(runs, time.Since(start))
		if err := rt.Delete(ctx, spec.Name); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(runs)
	b.ReportMetric(float64(runs[len(runs)/2])/float64(time.Millisecond), "ms-median")
}
