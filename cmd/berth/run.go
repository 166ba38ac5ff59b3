package main

import (
	"context"
	"fmt"

	shellwords "github.com/mattn/go-shellwords"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime"
)

func (c *cli) runCommand() *cobra.Command {
	var opts project.RunOptions
	var entrypoint string
	var rm, detach bool
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] SERVICE [COMMAND] [ARGS...]",
		Short: "Run a one-off command in a new container of a service",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, e, err := c.open(ctx)
			if err != nil {
				return err
			}
			opts.Service = args[0]
			if len(args) > 1 {
				opts.Command = args[1:]
			}
			if cmd.Flags().Changed("entrypoint") {
				if opts.Entrypoint, err = shellwords.Parse(entrypoint); err != nil {
					return fmt.Errorf("--entrypoint %q: %w", entrypoint, err)
				}
				if opts.Entrypoint == nil {
					opts.Entrypoint = []string{}
				}
			}
			name, err := e.Run(ctx, p, opts)
			if err != nil {
				return err
			}
			if detach {
				fmt.Fprintln(c.stdout, name)
				return nil
			}
			ct, err := e.Runtime().Get(name)
			if err != nil {
				return err
			}
			printer := newLogPrinter(c.stdout, []*runtime.Container{ct}, false, false, false)
			err = e.Logs(context.WithoutCancel(ctx), []*runtime.Container{ct}, project.LogOptions{Tail: -1, Follow: true},
				func(ct *runtime.Container, le runtime.LogEntry) error { return printer.line(ct, le, true) })
			if err != nil {
				return err
			}
			st, err := waitExit(cmd, e.Runtime(), name)
			if err != nil {
				return err
			}
			if rm {
				if err := e.RemoveContainer(context.WithoutCancel(ctx), p, name); err != nil {
					return err
				}
			}
			if st.ExitCode != 0 {
				return exitError{code: st.ExitCode}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // flags after SERVICE belong to the command
	f.BoolVar(&rm, "rm", false, "remove the container when it exits")
	f.BoolVarP(&detach, "detach", "d", false, "run in the background and print the container's name")
	f.StringArrayVarP(&opts.Env, "env", "e", nil, "set an environment variable (KEY=VALUE)")
	f.StringVar(&entrypoint, "entrypoint", "", "override the image's entrypoint")
	f.StringArrayVarP(&opts.Publish, "publish", "p", nil, "publish a port (HOST:CONTAINER)")
	f.BoolVar(&opts.ServicePorts, "service-ports", false, "publish the service's ports too")
	f.BoolVar(&opts.NoDeps, "no-deps", false, "don't start the service's dependencies")
	f.StringVar(&opts.Name, "name", "", "the container's name")
	f.StringVar(&opts.Pull, "pull", "policy", `pull the image before running ("always"|"missing"|"never"|"policy": the service's pull_policy)`)
	f.BoolVar(&opts.Build, "build", false, "build the image before starting the container")
	f.StringArrayVar(&opts.CapAdd, "cap-add", nil, "add a Linux capability (NET_ADMIN, ALL…)")
	f.StringArrayVar(&opts.CapDrop, "cap-drop", nil, "drop a Linux capability (NET_RAW, ALL…)")
	return cmd
}
