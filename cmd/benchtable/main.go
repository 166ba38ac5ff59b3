// Command benchtable turns `go test -bench` output into the table that
// `make bench` prints: one row per benchmark metric, with the target each
// figure is measured against (targets from docker and podman measured on the
// same kind of machine).
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
)

// targets maps "Benchmark/metric" to the figure to aim at.
var targets = map[string]string{
	"ContainerRun/ms-median":          "≤ 22 ms",
	"ContainerRunNoSeccomp/ms-median": "ContainerRun less at most 2 ms (the seccomp filter's cost)",
	"UpDown/1/up-ms":                  "",
	"UpDown/10/up-ms":                 "≤ 225 ms",
	"UpNoChange30/ms":                 "≤ 100 ms, nothing recreated",
	"UpWaitHealthyChain10/up-wait-ms": "",
	"MonitorPSS/KiB-per-ctr":          "≤ 1024 KiB",
	"PublishedPort/published/direct":  "≥ 0.95 (docker-proxy: 0.55)",
	"Logs200k/ms":                     "≤ 150 ms",
	"PullCold/ms":                     "5 layers, 50 MB, loopback registry",
	"PullWarm/ms":                     "",
	"Unpack/MB/s":                     "≥ UnpackTar",
	"UnpackTar/MB/s":                  "GNU tar -xzf of the same layers",
	"RebuildNoChange/ms":              "≤ 100 ms (10 steps, all cached)",
	"Absorb/follow/lines/s":           "≥ 10,000 lines/s",
	"Logs1M/key-ms":                   "≤ 100 ms",
	"Logs1M/heap-bytes":               "bounded (ring buffers)",
}

var line = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func main() {
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "BENCHMARK\tMETRIC\tVALUE\tTARGET")
	sc := bufio.NewScanner(os.Stdin)
	rows := 0
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			if strings.HasPrefix(sc.Text(), "--- FAIL") || strings.HasPrefix(sc.Text(), "FAIL") {
				fmt.Fprintln(os.Stderr, sc.Text())
			}
			continue
		}
		fields := strings.Fields(m[2])
		custom := len(fields) > 2
		for i := 0; i+1 < len(fields); i += 2 {
			value, unit := fields[i], fields[i+1]
			if custom && (unit == "ns/op" || unit == "B/op" || unit == "allocs/op") {
				continue
			}
			key := m[1] + "/" + unit
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m[1], unit, value, targets[key])
			rows++
		}
	}
	tw.Flush()
	if rows == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no benchmark results on stdin")
		os.Exit(1)
	}
}
