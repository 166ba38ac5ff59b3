package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
)

// DefaultLogLines is how many lines the UI keeps per service unless
// Options.LogLines says otherwise.
const DefaultLogLines = 10000

// Options configure Run.
type Options struct {
	// Project is the project's name, shown in the top line.
	Project string
	// Footer says what quitting does, in the bottom line: "q stops the
	// project" for `up --tui`, "q detaches, containers keep running" for
	// `berth tui`. Default: "q quits".
	Footer string
	// LogLines is how many lines the UI keeps per service
	// (DefaultLogLines when 0). Older lines are still in `berth logs`.
	LogLines int
	// NoColor draws without colour, as NO_COLOR or --no-color ask. Run
	// also draws without when the terminal has none or NO_COLOR is set.
	NoColor bool
	// Input and Output are the terminal; os.Stdin and os.Stdout when nil.
	Input  io.Reader
	Output io.Writer

	// Poll is how often the service list is refreshed (default 1s);
	// Batch how often log lines reach the screen at most (default 50ms;
	// negative: as soon as they come).
	Poll  time.Duration
	Batch time.Duration
	// Now is the clock of uptimes and CPU samples (default time.Now);
	// Location the time zone of timestamps (default time.Local).
	Now      func() time.Time
	Location *time.Location
}

func (o Options) withDefaults() Options {
	if o.Footer == "" {
		o.Footer = "q quits"
	}
	if o.LogLines <= 0 {
		o.LogLines = DefaultLogLines
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Batch < 0 {
		o.Batch = 0
	} else if o.Batch == 0 {
		o.Batch = 50 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	return o
}

// Run shows the UI on the terminal until the user quits or ctx ends, and
// tells which. When it returns, nothing it started runs any more: it has
// waited for the action the user started, if one was running, and for
// the goroutine that follows src's logs. It installs no signal handler:
// ctrl+c is a key in the terminal's raw mode, and a SIGTERM is the
// caller's to turn into a cancelled ctx. It returns an error only when
// the terminal fails.
func Run(ctx context.Context, src Source, opts Options) (Exit, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := opts.Output
	if out == nil {
		out = os.Stdout
	}
	profile := colorProfile(out, os.Environ(), opts.NoColor)
	m := newModel(ctx, src, opts, newStyles(profile >= colorprofile.ANSI))
	wait := m.feed.start(ctx, src)
	defer func() {
		m.calls.close()
		cancel()
		wait()
	}()

	// The alternate screen and the mouse are the View's (model.View).
	// A terminal that does not tell its size is 80×24, the model's size
	// until a WindowSizeMsg says otherwise.
	popts := []tea.ProgramOption{
		tea.WithContext(ctx), tea.WithOutput(out), tea.WithoutSignalHandler(),
		tea.WithColorProfile(profile), tea.WithWindowSize(80, 24),
	}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	final, err := tea.NewProgram(m, popts...).Run()
	if err != nil {
		if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
			return Canceled, nil
		}
		return Quit, fmt.Errorf("terminal UI: %w", err)
	}
	return final.(*model).exit, nil
}

// colorProfile is what out can show: colour (ANSI or better) or not.
// Besides what colorprofile detects, it takes NO_COLOR set to anything
// (no-color.org; colorprofile reads only its true values) and CLICOLOR=0
// without CLICOLOR_FORCE, as termenv did, and noColor (Options.NoColor).
func colorProfile(out io.Writer, env []string, noColor bool) colorprofile.Profile {
	p := colorprofile.Detect(out, env)
	get := func(name string) string {
		for _, kv := range env {
			if k, v, _ := strings.Cut(kv, "="); k == name {
				return v
			}
		}
		return ""
	}
	force := get("CLICOLOR_FORCE")
	if noColor || get("NO_COLOR") != "" || get("CLICOLOR") == "0" && (force == "" || force == "0") {
		p = min(p, colorprofile.ASCII)
	}
	return p
}
