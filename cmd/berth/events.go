package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/project"
)

func (c *cli) eventsCommand() *cobra.Command {
	var asJSON bool
	var since, until string
	cmd := &cobra.Command{
		Use:   "events [--json] [--since TIME] [--until TIME] [SERVICE...]",
		Short: "Stream the events of the project's containers as they happen",
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts project.EventOptions
			var err error
			if opts.Since, err = eventTime("--since", since); err != nil {
				return err
			}
			if opts.Until, err = eventTime("--until", until); err != nil {
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
			return e.FollowEvents(cmd.Context(), name, opts, func(ev project.ContainerEvent) error {
				if len(args) > 0 && !slices.Contains(args, ev.Service) {
					return nil
				}
				attrs := map[string]string{"name": ev.Container}
				if ev.Image != "" {
					attrs["image"] = ev.Image
				}
				maps.Copy(attrs, ev.Attributes)
				action := ev.Action
				if h, ok := attrs["healthStatus"]; ok {
					// docker's spelling of a health event.
					action += ": " + h
					delete(attrs, "healthStatus")
				}
				if asJSON {
					// docker compose's fields.
					data, err := json.Marshal(map[string]any{
						"time":       ev.Time,
						"type":       "container",
						"service":    ev.Service,
						"id":         ev.ID,
						"action":     action,
						"attributes": attrs,
					})
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(c.stdout, "%s\n", data)
					return err
				}
				var list []string
				for _, k := range slices.Sorted(maps.Keys(attrs)) {
					list = append(list, k+"="+attrs[k])
				}
				_, err := fmt.Fprintf(c.stdout, "%s container %s %s (%s)\n",
					ev.Time.Local().Format("2006-01-02 15:04:05.000000"), action, ev.ID, strings.Join(list, ", "))
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event as a line of JSON")
	cmd.Flags().StringVar(&since, "since", "", "first replay the events since this time (RFC 3339, or a duration ago: 10m)")
	cmd.Flags().StringVar(&until, "until", "", "stop at this time (RFC 3339, or a duration ago: 0s is now)")
	return cmd
}

// eventTime reads a time as docker events takes it: RFC 3339, or a
// duration before now ("10m").
func eventTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time or a duration such as 10m", flag, s)
}
