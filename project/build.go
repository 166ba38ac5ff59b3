package project

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/runtime/build"
	"github.com/berth-dev/berth/runtime/image"
)

// The steps of a service's build, in docker compose's words.
const (
	Building EventKind = "Building"
	Built    EventKind = "Built"
)

// BuildOptions are the flags of `berth build`.
type BuildOptions struct {
	// Services are the services to build; empty: every one with a build
	// section. Named services without one are left alone, as docker
	// compose does.
	Services []string
	// NoCache runs every step again (--no-cache).
	NoCache bool
	// Pull pulls the base images again (--pull).
	Pull bool
	// Args are --build-arg flags: KEY=VALUE, or KEY alone for the value
	// of KEY in the project's environment. They win over the file's args.
	Args []string
}

// Build builds the images of the project's buildable services, as `docker
// compose build`: one after the other, in dependency order, each image once.
// The first failure stops the rest.
func (e *Engine) Build(ctx context.Context, p *types.Project, opts BuildOptions) error {
	if _, err := selected(p, opts.Services); err != nil {
		return err
	}
	graph, err := NewGraph(p)
	if err != nil {
		return inFile(p, err)
	}
	want := map[string]bool{}
	for _, n := range opts.Services {
		want[n] = true
	}
	built := map[string]bool{}
	for _, name := range graph.Order() {
		s := p.Services[name]
		if s.Build == nil || (len(want) > 0 && !want[name]) {
			continue
		}
		ref := imageName(p, s)
		if built[ref] {
			continue
		}
		built[ref] = true
		if _, err := e.buildService(ctx, p, name, opts); err != nil {
			return err
		}
	}
	return nil
}

// buildService builds one service's image and tags it.
func (e *Engine) buildService(ctx context.Context, p *types.Project, name string, flags BuildOptions) (image.Image, error) {
	s := p.Services[name]
	opts, err := buildOptions(p, s, flags)
	if err == nil {
		err = checkBuildInputs(opts)
	}
	if err != nil {
		return image.Image{}, inFile(p, serviceError(name, err))
	}
	opts.Output = e.buildOutput
	opts.PullOptions = image.PullOptions{RegistryOptions: e.registry}
	e.emit(Building, serviceObject(name), "")
	img, err := build.Build(ctx, e.images, e.runtime, opts)
	if err != nil {
		return image.Image{}, inFile(p, serviceError(name, err))
	}
	e.emit(Built, serviceObject(name), "")
	return img, nil
}

// serviceObject is how events name a service.
func serviceObject(name string) string { return "Service " + name }

// imageName is the image of a service: its image, else, when it has a build
// section, docker compose's default name for what it builds,
// <project>-<service> (tagged latest).
func imageName(p *types.Project, s types.ServiceConfig) string {
	if s.Image != "" || s.Build == nil {
		return s.Image
	}
	return p.Name + "-" + s.Name
}

// buildOptions turns a service's build section, and the flags, into the
// builder's options, as docker compose does (toBuildOptions): the image
// is tagged with its name and the section's tags, and labelled with the
// project and service.
func buildOptions(p *types.Project, s types.ServiceConfig, flags BuildOptions) (build.Options, error) {
	b := s.Build
	if b == nil {
		return build.Options{}, errors.New("no build section")
	}
	if remoteContext(b.Context) {
		return build.Options{}, fmt.Errorf("build.context %q: berth builds from a local folder only (no git or URL contexts yet)", b.Context)
	}
	switch b.Network {
	case "", "default", "host", "none":
	default:
		return build.Options{}, fmt.Errorf("build.network %q: berth builds with \"default\" (the host's network), \"host\" or \"none\"", b.Network)
	}
	ctxDir := b.Context
	if ctxDir == "" {
		ctxDir = "."
	}
	if !filepath.IsAbs(ctxDir) {
		ctxDir = filepath.Join(p.WorkingDir, ctxDir)
	}
	// The file's args, then --build-arg; a key without a value takes the
	// project's environment (the shell's, then .env), or is dropped.
	resolve := func(k string) (string, bool) { v, ok := p.Environment[k]; return v, ok }
	merged := types.MappingWithEquals{}
	maps.Copy(merged, b.Args)
	maps.Copy(merged, types.NewMappingWithEquals(flags.Args))
	args := map[string]string{}
	for k, v := range merged.Resolve(resolve) {
		if v != nil {
			args[k] = *v
		}
	}
	labels := map[string]string{}
	maps.Copy(labels, b.Labels)
	labels[LabelProject] = p.Name
	labels[LabelService] = s.Name
	labels[LabelVersion] = Version
	opts := build.Options{
		ContextDir: ctxDir,
		Inline:     b.DockerfileInline,
		Args:       args,
		Target:     b.Target,
		Labels:     labels,
		Tags:       append([]string{imageName(p, s)}, b.Tags...),
		NoCache:    b.NoCache || flags.NoCache,
		Network:    b.Network,
	}
	if opts.Inline == "" {
		opts.Dockerfile = b.Dockerfile
	}
	if b.Pull || flags.Pull {
		opts.Pull = build.PullAlways
	}
	return opts, nil
}

// remoteContext tells a git repository or URL as a build context.
func remoteContext(c string) bool {
	return strings.Contains(c, "://") || strings.HasPrefix(c, "git@") || strings.HasPrefix(c, "github.com/")
}

// checkBuildInputs tells a missing context folder or Dockerfile before the
// builder starts, naming the compose field.
func checkBuildInputs(opts build.Options) error {
	fi, err := os.Stat(opts.ContextDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("build.context %s: no such folder", opts.ContextDir)
	case err != nil:
		return fmt.Errorf("build.context: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("build.context %s: not a folder", opts.ContextDir)
	}
	if opts.Inline != "" {
		return nil
	}
	df := opts.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	path := df
	if !filepath.IsAbs(path) {
		path = filepath.Join(opts.ContextDir, df)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("build.dockerfile %q: %s: no such file", df, path)
	}
	return nil
}

// imageFlags are the flags of up and run that decide how images are made
// ready: pulled or built.
type imageFlags struct {
	// Pull is --pull (see UpOptions.Pull).
	Pull string
	// Build builds every buildable service first (--build); NoBuild never
	// builds (--no-build).
	Build, NoBuild bool
}

// buildable reports whether the image of s is made by a build: its own
// build section, or another service's that names the same image.
func buildable(p *types.Project, s types.ServiceConfig) bool {
	if s.Build != nil {
		return true
	}
	if s.Image == "" {
		return false
	}
	for _, o := range p.Services {
		if o.Build != nil && o.Image == s.Image {
			return true
		}
	}
	return false
}

// upBuilds decides which of services (in order) up or run builds, once the
// pulls are done, as docker compose does: with --build every buildable one;
// otherwise those whose pull_policy is build, and those whose image is
// missing. With --no-build none, and a missing image is an error naming
// the service.
func upBuilds(p *types.Project, services []string, f imageFlags, has func(string) (bool, error)) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, name := range services {
		s := p.Services[name]
		if s.Build == nil {
			continue
		}
		ref := imageName(p, s)
		if seen[ref] {
			continue
		}
		present, err := has(ref)
		if err != nil {
			return nil, serviceError(name, err)
		}
		if f.NoBuild {
			if !present {
				return nil, serviceError(name, fmt.Errorf("image %q is not in the local store and up --no-build is set: build it with 'berth build %s'", ref, name))
			}
			continue
		}
		policy := s.PullPolicy
		if f.Pull != "" && f.Pull != pullFromPolicy {
			policy = f.Pull
		}
		if !present || f.Build || policy == types.PullPolicyBuild {
			seen[ref] = true
			out = append(out, name)
		}
	}
	return out, nil
}

// missingImage is the error of an image that was pulled or built a moment
// ago and is gone (removed meanwhile), with what brings it back.
func missingImage(p *types.Project, s types.ServiceConfig, ref string) error {
	if s.Build != nil {
		return fmt.Errorf("image %q not found in the local store: build it with 'berth build %s'", ref, s.Name)
	}
	return fmt.Errorf("image %q not found in the local store: pull it with 'berth pull %s'", ref, s.Name)
}
