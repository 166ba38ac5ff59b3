package project

import (
	"fmt"
	"slices"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/runtime"
)

// defaultShell runs a CMD-SHELL probe when the image sets no SHELL.
var defaultShell = []string{"/bin/sh", "-c"}

// healthcheck merges the service's healthcheck with the image's HEALTHCHECK
// as docker compose and the docker daemon do together: the service's test
// replaces the image's, a duration or retry count the service leaves unset
// comes from the image, and zero stays zero (the monitor applies docker's
// defaults). NONE, or disable: true, means no healthcheck (nil), whatever
// the image says. A CMD-SHELL probe runs in the image's SHELL.
func healthcheck(s *types.HealthCheckConfig, img *v1.HealthConfig, shell []string) (*runtime.Healthcheck, error) {
	var test []string
	var h runtime.Healthcheck
	if s != nil {
		test = s.Test
		if s.Disable {
			test = []string{"NONE"}
		}
		var err error
		for _, d := range []struct {
			field string
			in    *types.Duration
			out   *time.Duration
		}{
			{"interval", s.Interval, &h.Interval},
			{"timeout", s.Timeout, &h.Timeout},
			{"start_period", s.StartPeriod, &h.StartPeriod},
			{"start_interval", s.StartInterval, &h.StartInterval},
		} {
			if d.in == nil {
				continue
			}
			if *d.out, err = healthDuration(d.field, time.Duration(*d.in)); err != nil {
				return nil, err
			}
		}
		if s.Retries != nil {
			if *s.Retries > 1<<31-1 {
				return nil, fmt.Errorf("healthcheck.retries: %d is too large", *s.Retries)
			}
			h.Retries = int(*s.Retries)
		}
	}
	if img != nil {
		if len(test) == 0 {
			test = img.Test
		}
		h.Interval = orImage(h.Interval, img.Interval)
		h.Timeout = orImage(h.Timeout, img.Timeout)
		h.StartPeriod = orImage(h.StartPeriod, img.StartPeriod)
		if h.Retries == 0 {
			h.Retries = img.Retries
		}
	}
	if len(test) == 0 {
		return nil, nil // neither says anything: no probe
	}
	switch test[0] {
	case "NONE":
		return nil, nil
	case "CMD", "CMD-SHELL":
	default:
		return nil, fmt.Errorf("healthcheck.test: %q: must start with CMD, CMD-SHELL or NONE", test[0])
	}
	if len(test) < 2 || test[1] == "" {
		return nil, fmt.Errorf("healthcheck.test: %s needs a command", test[0])
	}
	if test[0] == "CMD" {
		h.Args = slices.Clone(test[1:])
	} else {
		if len(shell) == 0 {
			shell = defaultShell
		}
		h.Args = append(slices.Clone(shell), test[1:]...)
	}
	return &h, nil
}

// healthDuration checks a healthcheck duration as the docker daemon does:
// zero means the default, anything else is at least a millisecond.
func healthDuration(field string, d time.Duration) (time.Duration, error) {
	if d != 0 && d < time.Millisecond {
		return 0, fmt.Errorf("healthcheck.%s: %s: must be at least 1ms", field, d)
	}
	return d, nil
}

// orImage is the service's value, or the image's where the service left it zero.
func orImage(service, image time.Duration) time.Duration {
	if service != 0 {
		return service
	}
	return image
}

// serviceHealthcheck is the healthcheck the containers of s get with image
// config cfg.
func serviceHealthcheck(s types.ServiceConfig, cfg v1.Config) (*runtime.Healthcheck, error) {
	return healthcheck(s.HealthCheck, cfg.Healthcheck, cfg.Shell)
}
