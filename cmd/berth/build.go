package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
)

func (c *cli) buildCommand() *cobra.Command {
	var opts project.BuildOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] [SERVICE...]",
		Short: "Build or rebuild services",
		Long: "Build the images of the services that have a build section, one after the\n" +
			"other, each tagged with its image (default <project>-<service>) and its\n" +
			"build tags. Steps whose inputs did not change come from the cache (CACHED).",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, e, err := c.open(ctx)
			if err != nil {
				return err
			}
			c.quietBuild.Store(quiet)
			opts.Services = args
			return e.Build(ctx, p, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.NoCache, "no-cache", false, "do not use the cache when building the images")
	f.BoolVar(&opts.Pull, "pull", false, "always pull a newer version of the base images")
	f.StringArrayVar(&opts.Args, "build-arg", nil, "set a build-time variable (KEY=VALUE, or KEY for its value in the environment)")
	f.BoolVarP(&quiet, "quiet", "q", false, "don't print the build's progress")
	return cmd
}

// buildWriter passes the builder's progress to stderr, unless the build is
// quiet or a terminal UI owns the screen.
type buildWriter struct{ c *cli }

func (w buildWriter) Write(b []byte) (int, error) {
	if w.c.quietBuild.Load() || w.c.screen.Load() {
		return len(b), nil
	}
	return w.c.stderr.Write(b)
}

func (c *cli) builderCommand() *cobra.Command {
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Forget the build cache and delete what only it used",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.engine()
			if err != nil {
				return err
			}
			n, err := e.Images().PruneBuildCache()
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Deleted build cache steps: %d\n", n)
			return nil
		},
	}
	cmd := &cobra.Command{Use: "builder", Short: "Manage the build cache"}
	cmd.AddCommand(prune)
	return cmd
}
