package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/tui"
)

func (c *cli) tuiCommand() *cobra.Command {
	var lines int
	cmd := &cobra.Command{
		Use:   "tui",
		Short: "Watch a running project: services, live logs, actions (quitting leaves it running)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needTerminal("berth tui", "berth logs -f"); err != nil {
				return err
			}
			name, err := c.projectNameOnly(cmd)
			if err != nil {
				return err
			}
			e, err := c.engine()
			if err != nil {
				return err
			}
			// The actions need the file; watching needs only the name.
			p, _ := c.load(cmd.Context())
			if p != nil && p.Name != name {
				p = nil
			}
			_, err = c.runTUI(cmd.Context(), e, name, p, tuiOptions{footer: "q detaches, the containers keep running", lines: lines})
			return err
		},
	}
	cmd.Flags().IntVar(&lines, "lines", tui.DefaultLogLines, "log lines kept per service in the view")
	return cmd
}

// tuiOptions shape one run of the UI.
type tuiOptions struct {
	footer  string
	lines   int
	timeout *time.Duration
}

// runTUI runs the UI over the project name until the user quits.
func (c *cli) runTUI(ctx context.Context, e *project.Engine, name string, p *types.Project, opts tuiOptions) (tui.Exit, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	src := &tui.EngineSource{
		Engine: e, Name: name, Project: p, Timeout: opts.timeout,
		ShellCommand: []string{exe, "-p", name},
	}
	c.screen.Store(true)
	defer c.screen.Store(false)
	return tui.Run(ctx, src, tui.Options{
		Project:  name,
		Footer:   opts.footer,
		LogLines: opts.lines,
		NoColor:  !c.colors(c.stdout),
	})
}

// needTerminal refuses to draw a UI where there is no terminal.
func needTerminal(what, instead string) error {
	if !term.IsTerminal(int(os.Stdout.Fd())) || !term.IsTerminal(int(os.Stdin.Fd())) {
		return fmt.Errorf("%s needs a terminal: stdin or stdout is not one (use %s)", what, instead)
	}
	return nil
}

// upTUI is the end of `up --tui`: the UI until the user quits, then the
// project stops as Ctrl-C on an attached up stops it.
func (c *cli) upTUI(ctx context.Context, e *project.Engine, p *types.Project, services []string, timeout *time.Duration) error {
	exit, err := c.runTUI(ctx, e, p.Name, p, tuiOptions{footer: "q stops the project", timeout: timeout})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprintln(c.stderr, "Gracefully stopping...")
	if err := e.Stop(context.WithoutCancel(ctx), p, services, timeout); err != nil {
		return err
	}
	if exit == tui.Quit {
		return nil
	}
	return exitError{code: 130}
}
