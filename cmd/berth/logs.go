package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime"
)

func (c *cli) logsCommand() *cobra.Command {
	var follow, timestamps, noPrefix bool
	var tail string
	cmd := &cobra.Command{
		Use:   "logs [SERVICE...]",
		Short: "Show container output",
		RunE: func(cmd *cobra.Command, args []string) error {
			n := -1
			if tail != "all" {
				v, err := strconv.Atoi(tail)
				if err != nil || v < 0 {
					return fmt.Errorf("--tail %q: want a number of lines or \"all\"", tail)
				}
				n = v
			}
			name, err := c.projectNameOnly(cmd)
			if err != nil {
				return err
			}
			e, err := c.engine()
			if err != nil {
				return err
			}
			cs, err := e.Containers(name, args, true)
			if err != nil {
				return err
			}
			printer := newLogPrinter(c.stdout, cs, c.colors(c.stdout), !noPrefix, timestamps)
			err = e.Logs(cmd.Context(), cs, project.LogOptions{Tail: n, Follow: follow},
				func(ct *runtime.Container, le runtime.LogEntry) error { return printer.line(ct, le, follow) })
			if ferr := printer.flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow log output")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	f.BoolVar(&noPrefix, "no-log-prefix", false, "don't print the container name before each line")
	f.BoolVar(&c.noColor, "no-color", false, "produce monochrome output")
	f.StringVarP(&tail, "tail", "n", "all", "number of lines from the end of each container's log")
	return cmd
}
