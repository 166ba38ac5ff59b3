package project

import (
	"context"
	"errors"
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/runtime/image"
)

// PushOptions are the flags of `berth push`.
type PushOptions struct {
	// Services are the services whose images are pushed; empty: all.
	Services []string
	// IncludeDeps pushes the images of the services' dependencies too.
	IncludeDeps bool
	// IgnoreFailures pushes what can be pushed and warns about the rest.
	IgnoreFailures bool
}

// Push pushes the images of the project's services to their registries, as
// `docker compose push`: only the services that have both build and image
// are pushed (their image and their build tags), in parallel; the others
// are skipped, since pushing an image pulled from elsewhere (image: redis)
// is not what the command is for. A failure stops the other pushes unless
// IgnoreFailures, which warns instead.
func (e *Engine) Push(ctx context.Context, p *types.Project, opts PushOptions) error {
	names, err := commandServices(p, opts.Services, opts.IncludeDeps)
	if err != nil {
		return err
	}
	type job struct{ service, ref string }
	var jobs []job
	seen := map[string]bool{}
	for _, name := range names {
		s := p.Services[name]
		if s.Build == nil || s.Image == "" {
			e.report(ImageEvent{Service: name, Image: s.Image, Kind: Skipped})
			continue
		}
		for _, ref := range append([]string{s.Image}, s.Build.Tags...) {
			if !seen[ref] {
				seen[ref] = true
				jobs = append(jobs, job{service: name, ref: ref})
			}
		}
	}
	for _, j := range jobs {
		e.report(ImageEvent{Service: j.service, Image: j.ref, Kind: Pushing})
	}
	// Warnings wait for the end: a display may be drawing the pushes.
	ignored := make([]error, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelism)
	for i, j := range jobs {
		g.Go(func() error {
			err := gctx.Err()
			if err == nil {
				_, err = e.pushImage(gctx, j.service, j.ref)
			} else {
				e.report(ImageEvent{Service: j.service, Image: j.ref, Kind: ErrorEvent, Text: "canceled"})
			}
			if err == nil {
				return nil
			}
			err = inFile(p, serviceError(j.service, err))
			if opts.IgnoreFailures && ctx.Err() == nil {
				ignored[i] = err
				return nil
			}
			return err
		})
	}
	err = g.Wait()
	for i, ierr := range ignored {
		if ierr != nil {
			e.warn(fmt.Sprintf("Pushing %s: %v", jobs[i].service, ierr))
		}
	}
	return err
}

// pushImage pushes ref, telling the progress display about it.
func (e *Engine) pushImage(ctx context.Context, service, ref string) (image.Pushed, error) {
	pushed, err := e.images.Push(ctx, ref, image.PushOptions{
		RegistryOptions: e.registry,
		Progress: func(ev image.LayerEvent) {
			e.report(ImageEvent{Service: service, Image: ref, Kind: LayerStep, Layer: ev})
		},
	})
	if err != nil {
		text := err.Error()
		if errors.Is(err, context.Canceled) {
			text = "canceled"
		}
		e.report(ImageEvent{Service: service, Image: ref, Kind: ErrorEvent, Text: text})
		return image.Pushed{}, err
	}
	e.report(ImageEvent{Service: service, Image: ref, Kind: Pushed})
	return pushed, nil
}
