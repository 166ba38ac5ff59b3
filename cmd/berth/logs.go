package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime"
)

func (c *cli) logsCommand() *cobra.Command {
	var follow, timestamps, noPrefix bool
	var tail, since string
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
			var from time.Time
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				from = t
			}
			e, cs, err := c.containers(cmd, args, true)
			if err != nil {
				return err
			}
			printer := newLogPrinter(c.stdout, cs, c.colors(c.stdout), !noPrefix, timestamps)
			err = e.Logs(cmd.Context(), cs, project.LogOptions{Tail: n, Follow: follow, Since: from, WarnUnreadable: true},
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
	f.StringVar(&since, "since", "", "show lines since a timestamp (2013-01-02T13:23:37Z) or a relative time (42m)")
	f.StringVarP(&tail, "tail", "n", "all", "number of lines from the end of each container's log")
	return cmd
}

// parseSince reads --since as docker does: a duration back from now, an
// RFC 3339 time, or Unix seconds.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(secs*float64(time.Second))), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (42m), an RFC 3339 time or Unix seconds", s)
}
