// Package build builds images from Dockerfiles on berth's own runtime: no
// docker daemon, no BuildKit. The Dockerfile is read with BuildKit's
// parser; each RUN runs in a berth container over the layers of its stage
// so far, whose upper directory becomes the step's layer; COPY and ADD
// write their layer directly; every other instruction changes only the
// config. Each step's result is kept in the image store's build cache,
// keyed by its parent and its instruction (and, for COPY and ADD, the
// content of what they copy), so a build with nothing changed runs nothing.
package build

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/image"
)

// Options describe one build.
type Options struct {
	// ContextDir is the build context: the folder COPY and ADD read from.
	ContextDir string
	// Dockerfile is the Dockerfile's path, relative to ContextDir unless
	// absolute; empty means ContextDir/Dockerfile. Inline, when set, is
	// the Dockerfile's text instead (compose's dockerfile_inline).
	Dockerfile string
	Inline     string
	// Args are the build args (--build-arg): values of the Dockerfile's
	// ARGs, and the predefined proxy args (HTTP_PROXY…), which reach RUN
	// without an ARG.
	Args map[string]string
	// Target is the stage to build (--target); empty means the last.
	Target string
	// Labels are added to the image's config (--label).
	Labels map[string]string
	// Tags name the image ("app", "registry:5000/app:1"); none leaves it
	// untagged.
	Tags []string
	// NoCache runs every step again (--no-cache); the results still go to
	// the cache.
	NoCache bool
	// Pull says when a base image is pulled: PullMissing (the default),
	// PullAlways (--pull) or PullNever. PullOptions tune the pulls.
	Pull        PullPolicy
	PullOptions image.PullOptions
	// Network is the network of RUN steps: "" or "default" or "host" is
	// the host's (as docker's default build network reaches out), "none"
	// a namespace of its own with only a loopback.
	Network string
	// Output receives the progress, as docker's plain progress prints it:
	// "#5 [2/4] RUN echo hi", its output lines, "#5 DONE 0.3s" or
	// "#5 CACHED". Nil prints nothing.
	Output io.Writer
}

// PullPolicy says when a build pulls a base image.
type PullPolicy string

const (
	// PullMissing pulls an image the store does not have.
	PullMissing PullPolicy = ""
	// PullAlways pulls every base image again (docker build --pull).
	PullAlways PullPolicy = "always"
	// PullNever uses only the store's images.
	PullNever PullPolicy = "never"
)

// builder is the state of one build.
type builder struct {
	store *image.Store
	rt    *runtime.Runtime
	opts  Options
	df    *dockerfile
	p     *progress
	lex   *shell.Lex
	// global is the environment of the global scope: FROM lines expand
	// from it.
	global envList
	// used are the build args an ARG consumed.
	used map[string]bool
	// stages are the built stages, by index; building marks those under
	// way, to tell a stage that depends on itself.
	stages   []*stage
	building []bool
	// context is the build context, opened at the first COPY or ADD.
	context *buildContext
	work    *image.WorkDir
	// closers release what the build opened (views of --from stages).
	closers []func()
}

// Build builds the image opts describe and returns it, as the store lists
// it (by its first tag, if it has one). A failed or cancelled build leaves
// the store consistent (the steps that completed stay in the cache) and no
// container behind.
func Build(ctx context.Context, store *image.Store, rt *runtime.Runtime, opts Options) (image.Image, error) {
	img, err := build(ctx, store, rt, opts)
	if err != nil {
		return image.Image{}, fmt.Errorf("build: %w", err)
	}
	return img, nil
}

func build(ctx context.Context, store *image.Store, rt *runtime.Runtime, opts Options) (image.Image, error) {
	switch opts.Network {
	case "", "default", "host", "none":
	default:
		return image.Image{}, fmt.Errorf("network %q: berth builds with \"default\" (the host's), \"host\" or \"none\"", opts.Network)
	}
	p := newProgress(opts.Output)
	v := p.begin("[internal] load build definition from " + dockerfileName(opts))
	df, err := readDockerfile(opts)
	if err != nil {
		v.fail(err)
		return image.Image{}, err
	}
	v.note("transferring dockerfile: %dB done", df.size)
	v.done()

	b := &builder{
		store:    store,
		rt:       rt,
		opts:     opts,
		df:       df,
		p:        p,
		lex:      shell.NewLex(df.escape),
		used:     map[string]bool{},
		stages:   make([]*stage, len(df.stages)),
		building: make([]bool, len(df.stages)),
	}
	defer b.close()
	removeStaleBuildContainers(ctx, rt)
	if b.global, err = b.globalArgs(); err != nil {
		return image.Image{}, fmt.Errorf("%s: %w: global ARG: %w", df.name, ErrDockerfile, err)
	}
	target := len(df.stages) - 1
	if opts.Target != "" {
		i, ok := b.stageIndex(opts.Target)
		if !ok {
			return image.Image{}, fmt.Errorf("%s: %w: target stage %q could not be found (stages: %s)", df.name, ErrUnknownStage, opts.Target, b.stageNames())
		}
		target = i
	}
	st, err := b.buildStage(ctx, target)
	if err != nil {
		return image.Image{}, err
	}
	if unused := b.unusedArgs(); len(unused) > 0 {
		p.printf("[Warning] One or more build-args %v were not consumed\n", unused)
	}
	return b.export(ctx, st)
}

func dockerfileName(opts Options) string {
	switch {
	case opts.Inline != "":
		return "inline Dockerfile"
	case opts.Dockerfile != "":
		return opts.Dockerfile
	}
	return "Dockerfile"
}

// export makes the image of the target stage, with the build's labels, and
// tags it.
func (b *builder) export(ctx context.Context, st *stage) (image.Image, error) {
	v := b.p.begin("exporting to image")
	cf := st.cf.DeepCopy()
	if len(b.opts.Labels) > 0 {
		if cf.Config.Labels == nil {
			cf.Config.Labels = map[string]string{}
		}
		maps.Copy(cf.Config.Labels, b.opts.Labels)
	}
	img, err := b.store.CommitImage(ctx, cf, b.opts.Tags)
	if err != nil {
		v.fail(err)
		return image.Image{}, fmt.Errorf("export image: %w", err)
	}
	v.note("writing image %s done", img.ID)
	for _, t := range img.Tags {
		v.note("naming to %s done", t)
	}
	v.done()
	return img, nil
}

// stageIndex finds a stage by name (as docker, without regard to case) or
// by its number.
func (b *builder) stageIndex(name string) (int, bool) {
	for i, s := range b.df.stages {
		if s.Name != "" && strings.EqualFold(s.Name, name) {
			return i, true
		}
	}
	var n int
	if _, err := fmt.Sscanf(name, "%d", &n); err == nil && fmt.Sprint(n) == name && n >= 0 && n < len(b.df.stages) {
		return n, true
	}
	return 0, false
}

func (b *builder) stageNames() string {
	var names []string
	for i, s := range b.df.stages {
		if s.Name != "" {
			names = append(names, s.Name)
		} else {
			names = append(names, fmt.Sprint(i))
		}
	}
	return strings.Join(names, ", ")
}

// workDir is the build's work folder in the image store, made when first
// needed.
func (b *builder) workDir() (*image.WorkDir, error) {
	if b.work == nil {
		w, err := b.store.NewWorkDir()
		if err != nil {
			return nil, err
		}
		b.work = w
	}
	return b.work, nil
}

// onClose has fn run when the build ends.
func (b *builder) onClose(fn func()) { b.closers = append(b.closers, fn) }

func (b *builder) close() {
	for _, fn := range b.closers {
		fn()
	}
	if b.work != nil {
		b.work.Close()
	}
	if b.context != nil {
		b.context.close()
	}
}

// now is the time steps record, in UTC as image configs have it.
func now() time.Time { return time.Now().UTC() }
