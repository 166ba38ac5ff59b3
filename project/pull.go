package project

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/runtime/image"
)

// The steps of a pull or a push, in docker compose's words.
const (
	Pulling EventKind = "Pulling"
	Pulled  EventKind = "Pulled"
	Pushing EventKind = "Pushing"
	Pushed  EventKind = "Pushed"
	Skipped EventKind = "Skipped"
	// LayerStep: ImageEvent.Layer moved on (Downloading, Pull complete…).
	LayerStep EventKind = "Layer"
)

// ImageEvent is one step of the pull or push of a service's image, for a
// progress display: Pulling (or Pushing) first, then the steps of its layers
// (LayerStep), then Pulled, Pushed or Error; or Skipped alone. The events of
// several images arrive interleaved, from several goroutines.
type ImageEvent struct {
	// Service is the service the image is pulled for (the first, in
	// order, when several share it).
	Service string
	// Image is the reference as the compose file writes it.
	Image string
	Kind  EventKind
	// Layer is the layer's step, when Kind is LayerStep.
	Layer image.LayerEvent
	// Text says why an image is skipped, or what failed.
	Text string
}

func (e *Engine) report(ev ImageEvent) {
	if e.progress != nil {
		e.progress(ev)
	}
}

// PullOptions are the flags of `berth pull`.
type PullOptions struct {
	// Services are the services whose images are pulled; empty: all.
	Services []string
	// IncludeDeps pulls the images of the services' dependencies too.
	IncludeDeps bool
	// Policy replaces every service's pull_policy: "always", or "missing"
	// (and its alias "if_not_present"); empty keeps each service's.
	Policy string
	// IgnoreFailures pulls what can be pulled and reports the rest without
	// failing.
	IgnoreFailures bool
	// IgnoreBuildable skips the services that have a build section.
	IgnoreBuildable bool
}

// Pull pulls the images of the project's services, as `docker compose
// pull`: in parallel, each image once, skipping the services without an
// image, those whose pull_policy is never or build, and (pull_policy missing
// or if_not_present) those whose image the store has. A failure stops the
// other pulls, unless IgnoreFailures, or unless the service can be built
// (then a warning names it, and Pull fails once all are done).
func (e *Engine) Pull(ctx context.Context, p *types.Project, opts PullOptions) error {
	switch opts.Policy {
	case "", types.PullPolicyAlways, types.PullPolicyMissing, types.PullPolicyIfNotPresent:
	default:
		return fmt.Errorf("--policy %q: want %q or %q", opts.Policy, types.PullPolicyMissing, types.PullPolicyAlways)
	}
	names, err := commandServices(p, opts.Services, opts.IncludeDeps)
	if err != nil {
		return err
	}
	var jobs []pullJob
	pulledBy := map[string]string{}
	for _, name := range names {
		s := p.Services[name]
		skip := func(text string) {
			e.report(ImageEvent{Service: name, Image: s.Image, Kind: Skipped, Text: text})
		}
		if s.Image == "" {
			skip("No image to be pulled")
			continue
		}
		policy := s.PullPolicy
		if opts.Policy != "" {
			policy = opts.Policy
		}
		// Unlike up, pull pulls by default (no pull_policy), and
		// daily, weekly, every_…: it is how images are refreshed.
		switch policy {
		case types.PullPolicyNever, types.PullPolicyBuild:
			skip("")
			continue
		case types.PullPolicyMissing, types.PullPolicyIfNotPresent:
			has, err := e.hasImage(s.Image)
			if err != nil {
				return inFile(p, serviceError(name, err))
			}
			if has {
				skip("Image is already present locally")
				continue
			}
		}
		if opts.IgnoreBuildable && s.Build != nil {
			skip("Image can be built")
			continue
		}
		if by, ok := pulledBy[s.Image]; ok {
			skip("Image is already being pulled by " + by)
			continue
		}
		pulledBy[s.Image] = name
		jobs = append(jobs, pullJob{service: name, ref: s.Image, failFast: !opts.IgnoreFailures && s.Build == nil, buildable: buildable(p, s)})
	}

	first, errs := e.pullJobs(ctx, p, jobs)
	var mustBuild []string
	for i, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) && p.Services[jobs[i].service].Build != nil {
			mustBuild = append(mustBuild, jobs[i].service)
		}
	}
	if len(mustBuild) > 0 {
		e.warn("Some service image(s) must be built from source by running: berth build " + strings.Join(mustBuild, " "))
	}
	switch {
	case first != nil:
		return first
	case ctx.Err() != nil:
		return ctx.Err()
	case opts.IgnoreFailures:
		return nil
	}
	return errors.Join(errs...)
}

// commandServices is the sorted names of the services a pull or push
// applies to: the named ones (with their dependencies when deps), or all.
func commandServices(p *types.Project, services []string, deps bool) ([]string, error) {
	set, err := selected(p, services)
	if err != nil {
		return nil, err
	}
	if deps && len(services) > 0 {
		graph, err := NewGraph(p)
		if err != nil {
			return nil, inFile(p, err)
		}
		all, err := graph.WithDependencies(services)
		if err != nil {
			return nil, inFile(p, err)
		}
		for _, n := range all {
			set[n] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// pullJob is one image to pull.
type pullJob struct {
	service, ref string
	// failFast: when this pull fails, the others stop.
	failFast bool
	// buildable: the image can be built instead, so a failure is only a
	// warning on the progress display.
	buildable bool
}

// pullJobs pulls the jobs' images in parallel, announcing them all first so
// that a display knows what is coming. errs holds each job's error, naming
// its file and service; first is the failure that stopped the others (or
// the cancellation of ctx), nil if none did.
func (e *Engine) pullJobs(ctx context.Context, p *types.Project, jobs []pullJob) (first error, errs []error) {
	for _, j := range jobs {
		e.report(ImageEvent{Service: j.service, Image: j.ref, Kind: Pulling})
	}
	errs = make([]error, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelism)
	for i, j := range jobs {
		g.Go(func() error {
			err := gctx.Err()
			if err == nil {
				_, err = e.pullImage(gctx, j)
			} else {
				e.report(ImageEvent{Service: j.service, Image: j.ref, Kind: ErrorEvent, Text: "canceled"})
			}
			if err == nil {
				return nil
			}
			errs[i] = inFile(p, serviceError(j.service, err))
			if j.failFast || ctx.Err() != nil {
				return errs[i]
			}
			return nil
		})
	}
	return g.Wait(), errs
}

// pullImage pulls a job's image, telling the progress display about it.
func (e *Engine) pullImage(ctx context.Context, j pullJob) (image.Image, error) {
	service, ref := j.service, j.ref
	img, err := e.images.Pull(ctx, ref, image.PullOptions{
		RegistryOptions: e.registry,
		Progress: func(ev image.LayerEvent) {
			e.report(ImageEvent{Service: service, Image: ref, Kind: LayerStep, Layer: ev})
		},
	})
	if err != nil {
		text, kind := err.Error(), ErrorEvent
		if errors.Is(err, context.Canceled) {
			text = "canceled"
		} else if j.buildable {
			kind = Warning
		}
		e.report(ImageEvent{Service: service, Image: ref, Kind: kind, Text: text})
		return image.Image{}, err
	}
	e.report(ImageEvent{Service: service, Image: ref, Kind: Pulled})
	return img, nil
}

// hasImage tells whether the store has the image ref names.
func (e *Engine) hasImage(ref string) (bool, error) {
	_, err := e.images.Resolve(ref)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, image.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("image %q: %w", ref, err)
}

// The values of up's and run's --pull: "policy" (or empty) keeps each
// service's pull_policy.
const pullFromPolicy = "policy"

// checkPullFlag checks the value of up's or run's --pull.
func checkPullFlag(v string) error {
	switch v {
	case "", pullFromPolicy, types.PullPolicyAlways, types.PullPolicyMissing, types.PullPolicyNever:
		return nil
	}
	return fmt.Errorf("--pull %q: want %q, %q, %q or %q", v, types.PullPolicyAlways, types.PullPolicyMissing, types.PullPolicyNever, pullFromPolicy)
}

// ensureImages makes ready, before up or run creates anything, the images
// of services (in order): it pulls those that their pull_policy, or the
// --pull flag, asks for, then builds those that must be built (see
// upBuilds), and fails when one is missing that may be neither pulled nor
// built. A failed build names the compose file and the service.
func (e *Engine) ensureImages(ctx context.Context, p *types.Project, services []string, f imageFlags) error {
	if err := checkPullFlag(f.Pull); err != nil {
		return err
	}
	if f.Build && f.NoBuild {
		return errors.New("--build and --no-build cannot go together")
	}
	jobs, notes, err := upPulls(p, services, f, e.hasImage)
	if err != nil {
		return inFile(p, err)
	}
	for _, n := range notes {
		e.warn(n)
	}
	if first, _ := e.pullJobs(ctx, p, jobs); first != nil {
		return first
	}
	builds, err := upBuilds(p, services, f, e.hasImage)
	if err != nil {
		return inFile(p, err)
	}
	for _, name := range builds {
		if _, err := e.buildService(ctx, p, name, BuildOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// upPulls decides which images up pulls for services (in order): those
// whose pull_policy (or f.Pull, up's --pull) is always, and the missing ones
// of policy missing or if_not_present. With --build, a service with a build
// section pulls nothing (its policy is build, as docker compose sets it).
// A missing image that may not be pulled (never, build) is an error naming
// the service, unless it can be built: upBuilds decides that. A failed pull
// of an image that can be built is no error: the build follows. notes are
// for the user: berth has no pull dates yet, so daily, weekly and every_…
// pull only what is missing.
func upPulls(p *types.Project, services []string, f imageFlags, has func(string) (bool, error)) (jobs []pullJob, notes []string, err error) {
	seen := map[string]bool{}
	for _, name := range services {
		s := p.Services[name]
		if s.Image == "" {
			continue // built under its default name, or prepareServices says why
		}
		setting := "its pull_policy is"
		if f.Pull != "" && f.Pull != pullFromPolicy {
			s.PullPolicy = f.Pull
			setting = "up --pull is"
		}
		if f.Build && s.Build != nil {
			s.PullPolicy = types.PullPolicyBuild
		}
		canBuild := buildable(p, s)
		policy, _, err := s.GetPullPolicy()
		if err != nil {
			return nil, nil, serviceError(name, fmt.Errorf("pull_policy: %w", err))
		}
		if policy == types.PullPolicyRefresh {
			notes = append(notes, fmt.Sprintf("service %q: pull_policy %s: berth does not record when images were pulled yet, so it pulls %s only when it is missing", name, s.PullPolicy, s.Image))
			policy = types.PullPolicyMissing
		}
		if policy == types.PullPolicyAlways {
			if !seen[s.Image] {
				seen[s.Image] = true
				jobs = append(jobs, pullJob{service: name, ref: s.Image, failFast: !canBuild, buildable: canBuild})
			}
			continue
		}
		present, err := has(s.Image)
		if err != nil {
			return nil, nil, serviceError(name, err)
		}
		if present || seen[s.Image] {
			continue
		}
		switch {
		case policy != types.PullPolicyNever && policy != types.PullPolicyBuild:
		case canBuild:
			continue
		case policy == types.PullPolicyNever:
			return nil, nil, serviceError(name, fmt.Errorf("image %q is not in the local store and %s never: pull it with 'berth pull %s', or load it with 'berth image load'", s.Image, setting, name))
		default:
			return nil, nil, serviceError(name, fmt.Errorf("image %q is not in the local store and %s build, but the service has no build section: add one, or pull the image with 'berth pull --policy missing %s'", s.Image, setting, name))
		}
		seen[s.Image] = true
		jobs = append(jobs, pullJob{service: name, ref: s.Image, failFast: !canBuild, buildable: canBuild})
	}
	return jobs, notes, nil
}
