package seccomp

import (
	"runtime"
	"testing"
)

// BenchmarkDefaultFilter is what a container's init pays: docker's default
// profile resolved for docker's capabilities and compiled. The budget is
// well under 2ms; TestColdFilter measures the first call of a process.
func BenchmarkDefaultFilter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Filter(nil, dockerCaps); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompile is the compiler alone, on the resolved default profile.
func BenchmarkCompile(b *testing.B) {
	cfg, err := DefaultProfile(dockerCaps)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(cfg, runtime.GOARCH); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDefaultProfile is docker's conversion alone.
func BenchmarkDefaultProfile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DefaultProfile(dockerCaps); err != nil {
			b.Fatal(err)
		}
	}
}
