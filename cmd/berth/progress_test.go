package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
)

var (
	layerA = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a1", 32)}
	layerB = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b2", 32)}
)

// pullEvents are the events of pulling web's image (one layer downloaded,
// one the store had), with db's image already present.
func pullEvents() []project.ImageEvent {
	web := func(kind project.EventKind, text string) project.ImageEvent {
		return project.ImageEvent{Service: "web", Image: "registry.test/web", Kind: kind, Text: text}
	}
	layer := func(h v1.Hash, s image.LayerState, cur int64) project.ImageEvent {
		ev := web(project.LayerStep, "")
		ev.Layer = image.LayerEvent{Layer: h, State: s, Current: cur, Total: 45_600_000}
		return ev
	}
	return []project.ImageEvent{
		{Service: "db", Image: "db", Kind: project.Skipped, Text: "Image is already present locally"},
		web(project.Pulling, ""),
		layer(layerA, image.LayerWaiting, 0),
		layer(layerB, image.LayerExists, 45_600_000),
		layer(layerA, image.LayerDownloading, 1_000_000),
		layer(layerA, image.LayerDownloading, 12_300_000),
		layer(layerA, image.LayerDownloading, 45_600_000),
		layer(layerA, image.LayerVerifying, 45_600_000),
		layer(layerA, image.LayerDownloaded, 45_600_000),
		layer(layerA, image.LayerExtracting, 45_600_000),
		layer(layerA, image.LayerDone, 45_600_000),
		web(project.Pulled, ""),
	}
}

func TestTransferPrinterPlain(t *testing.T) {
	var out bytes.Buffer
	p := newTransferPrinter(&out)
	for _, ev := range pullEvents() {
		p.event(ev)
	}
	p.event(project.ImageEvent{Service: "api", Image: "nosuch", Kind: project.Pulling})
	p.event(project.ImageEvent{Service: "api", Image: "nosuch", Kind: project.ErrorEvent, Text: "pull nosuch: not found\nin the registry"})
	p.done()
	want := ` db Skipped - Image is already present locally
 web Pulling
 a1a1a1a1a1a1 Waiting
 b2b2b2b2b2b2 Already exists
 a1a1a1a1a1a1 Downloading
 a1a1a1a1a1a1 Verifying Checksum
 a1a1a1a1a1a1 Download complete
 a1a1a1a1a1a1 Extracting
 a1a1a1a1a1a1 Pull complete
 web Pulled
 api Pulling
 api Error pull nosuch: not found; in the registry
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}

	// docker pull's lines, layers only; quiet prints nothing.
	out.Reset()
	p = newTransferPrinter(&out)
	p.docker = true
	for _, ev := range pullEvents() {
		p.event(ev)
	}
	want = `a1a1a1a1a1a1: Waiting
b2b2b2b2b2b2: Already exists
a1a1a1a1a1a1: Downloading
a1a1a1a1a1a1: Verifying Checksum
a1a1a1a1a1a1: Download complete
a1a1a1a1a1a1: Extracting
a1a1a1a1a1a1: Pull complete
`
	if out.String() != want {
		t.Errorf("docker style, got:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	p = newTransferPrinter(&out)
	p.quiet = true
	for _, ev := range pullEvents() {
		p.event(ev)
	}
	if out.Len() != 0 {
		t.Errorf("quiet printed %q", out.String())
	}
}

func TestTransferPrinterTerminal(t *testing.T) {
	var out bytes.Buffer
	p := newTransferPrinter(&out)
	p.tty = true
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	p.now = func() time.Time { return now }
	p.size = func() (int, int) { return 60, 40 }
	evs := pullEvents()
	// Mid-download: a bar and byte counts.
	for _, ev := range evs[:6] {
		now = now.Add(50 * time.Millisecond)
		p.event(ev)
	}
	frame := p.frame(now, 80, 40)
	want := []string{
		"[+] Pulling 1/2",
		" ✔ db Skipped - Image is already present locally",
		" ⠸ web Pulling",
		"   ⠸ a1a1a1a1a1a1 Downloading [=====>              ] 12.3MB/45.6MB",
		"   ✔ b2b2b2b2b2b2 Already exists",
	}
	checkFrame(t, frame, want)

	for _, ev := range evs[6:] {
		now = now.Add(50 * time.Millisecond)
		p.event(ev)
	}
	frame = p.frame(now, 80, 40)
	want = []string{
		"[+] Pulling 2/2",
		" ✔ db Skipped - Image is already present locally",
		" ✔ web Pulled",
		"   ✔ a1a1a1a1a1a1 Pull complete",
		"   ✔ b2b2b2b2b2b2 Already exists",
	}
	checkFrame(t, frame, want)
	if got := frame[2]; !strings.HasSuffix(got, " 0.5s") || len([]rune(got)) != 79 {
		t.Errorf("web's line %q: want its time at the right of 80 columns", got)
	}

	// Each redraw goes back up over the previous frame.
	if !strings.Contains(out.String(), "\x1b[5A\r") {
		t.Errorf("no redraw in place: %q", out.String())
	}
	// Narrow and short terminals: no line wraps, the block fits.
	for _, l := range p.frame(now, 20, 4) {
		if n := len([]rune(l)); n >= 20 {
			t.Errorf("line %q is %d wide on 20 columns", l, n)
		}
	}
	if n := len(p.frame(now, 80, 4)); n > 3 {
		t.Errorf("%d lines on a terminal of 4", n)
	}
	// done ends the block: what comes next starts a new one.
	p.done()
	out.Reset()
	p.event(project.ImageEvent{Service: "x", Image: "x", Kind: project.Pulling})
	if strings.Contains(out.String(), "\x1b[") && strings.Contains(out.String(), "A\r") {
		t.Errorf("a new block went up over the old one: %q", out.String())
	}
}

// checkFrame compares a frame's lines without their times.
func checkFrame(t *testing.T, frame, want []string) {
	t.Helper()
	var got []string
	for _, l := range frame {
		if i := strings.LastIndex(l, "  "); i > 0 && strings.HasSuffix(l, "s") {
			l = strings.TrimRight(l[:i], " ")
		}
		got = append(got, l)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("frame:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRegistryOptions(t *testing.T) {
	t.Setenv(insecureEnv, " registry.lan:5000, 10.0.0.0/8,,http://build.lan ")
	opts, err := registryOptions()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(opts.Insecure, ","); got != "registry.lan:5000,10.0.0.0/8,http://build.lan" {
		t.Errorf("Insecure = %q", got)
	}
	t.Setenv(insecureEnv, "10.0.0.0/33")
	if _, err := registryOptions(); err == nil || !strings.Contains(err.Error(), `BERTH_INSECURE_REGISTRIES: "10.0.0.0/33"`) {
		t.Errorf("err = %v", err)
	}
}
