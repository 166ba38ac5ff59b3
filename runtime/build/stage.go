package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berth-dev/berth/runtime/image"
)

// stage is a stage of the Dockerfile as its steps build it.
type stage struct {
	index int
	def   *instructions.Stage
	// prefix is what the progress puts before a step's number: the stage's
	// name ("build "), "stage-N " for an unnamed one, nothing for a
	// Dockerfile of one stage.
	prefix string
	// id is the parent that the next step's cache key names: the digest
	// of cf as the store holds it, or "scratch".
	id string
	cf *v1.ConfigFile
	// env is the environment that expands the instructions and that RUN
	// gets: the image's, and the stage's ARGs of a value.
	env envList
	// cmdSet: a CMD of this stage was seen (an ENTRYPOINT keeps it).
	cmdSet bool
	// layers are the unpacked layer directories of cf (nil until needed).
	layers []string
}

// scratchID is the parent of a stage's first step on FROM scratch.
const scratchID = "scratch"

// set moves the stage on to a step's result.
func (st *stage) set(s image.Step) {
	st.id, st.cf, st.layers = s.ID, s.Config, nil
}

// layerDirs are the stage's layers, lowest first, ready to be overlay
// lower directories.
func (b *builder) layerDirs(st *stage) ([]string, error) {
	if st.layers == nil {
		dirs, err := b.store.LayerDirs(image.Image{ID: st.id, DiffIDs: st.cf.RootFS.DiffIDs})
		if err != nil {
			return nil, err
		}
		st.layers = dirs
	}
	return st.layers, nil
}

// buildStage builds stage i once, and the stages it needs first.
func (b *builder) buildStage(ctx context.Context, i int) (*stage, error) {
	if st := b.stages[i]; st != nil {
		return st, nil
	}
	if b.building[i] {
		return nil, fmt.Errorf("%s:%d: %w: stage %s depends on itself", b.df.name, lineOf(b.df.stages[i].Location), ErrUnknownStage, b.stageName(i))
	}
	b.building[i] = true
	defer func() { b.building[i] = false }()
	def := &b.df.stages[i]
	// The stages this one names are built first, so that their steps do
	// not come in the middle of this one's.
	for _, j := range b.dependencies(i) {
		if _, err := b.buildStage(ctx, j); err != nil {
			return nil, err
		}
	}
	st, err := b.from(ctx, i, def)
	if err != nil {
		return nil, err
	}
	n := len(def.Commands) + 1
	for j, cmd := range def.Commands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		label := fmt.Sprintf("[%s%d/%d] %s", st.prefix, j+2, n, oneLine(codeOf(cmd)))
		v := b.p.begin(label)
		if err := b.dispatch(ctx, st, cmd, v); err != nil {
			v.fail(err)
			return nil, &stepError{file: b.df.name, line: lineOf(cmd.Location()), step: label, err: err}
		}
	}
	b.stages[i] = st
	return st, nil
}

// dependencies are the earlier stages that stage i names in its FROM and
// its COPY --from, as far as the global ARGs tell (a --from that a stage's
// ARG makes is found when the COPY runs).
func (b *builder) dependencies(i int) []int {
	var out []int
	// A FROM names a stage by its name only; a --from by its number too.
	add := func(name string, byNumber bool) {
		name, err := b.expandWord(name, b.global)
		if err != nil {
			return
		}
		j, ok := b.stageIndex(name)
		if ok && j < i && (byNumber || b.df.stages[j].Name != "") && !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	def := &b.df.stages[i]
	add(def.BaseName, false)
	for _, cmd := range def.Commands {
		if c, ok := cmd.(*instructions.CopyCommand); ok && c.From != "" {
			add(c.From, true)
		}
	}
	return out
}

func (b *builder) stageName(i int) string {
	if n := b.df.stages[i].Name; n != "" {
		return n
	}
	return fmt.Sprintf("stage-%d", i)
}

// codeOf is an instruction as the Dockerfile has it.
func codeOf(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return s.String()
	}
	return strings.ToUpper(cmd.Name())
}

// from starts stage i from its base: scratch, an earlier stage, or an image
// of the store or of a registry.
func (b *builder) from(ctx context.Context, i int, def *instructions.Stage) (*stage, error) {
	st := &stage{index: i, def: def}
	if len(b.df.stages) > 1 {
		st.prefix = b.stageName(i) + " "
	}
	n := len(def.Commands) + 1
	base, err := b.expandWord(def.BaseName, b.global)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %w: FROM %s: %w", b.df.name, lineOf(def.Location), ErrDockerfile, def.BaseName, err)
	}
	label := fmt.Sprintf("[%s1/%d] FROM %s", st.prefix, n, base)
	v := b.p.begin(label)
	fail := func(err error) (*stage, error) {
		v.fail(err)
		return nil, &stepError{file: b.df.name, line: lineOf(def.Location), step: label, err: err}
	}
	if err := b.checkPlatform(def.Platform); err != nil {
		return fail(err)
	}
	switch j, isStage := b.stageIndex(base); {
	case base == "":
		return fail(fmt.Errorf("%w: FROM needs an image", ErrDockerfile))
	case strings.EqualFold(base, "scratch"):
		st.id = scratchID
		st.cf = &v1.ConfigFile{
			OS:           "linux",
			Architecture: goruntime.GOARCH,
			RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{}},
		}
	case isStage && b.df.stages[j].Name != "":
		if j >= i {
			return fail(fmt.Errorf("%w: stage %q is not defined before this one", ErrUnknownStage, base))
		}
		from, err := b.buildStage(ctx, j)
		if err != nil {
			return nil, err
		}
		st.id, st.cf = from.id, from.cf.DeepCopy()
	default:
		img, err := b.baseImage(ctx, base, v)
		if err != nil {
			return fail(err)
		}
		cf, err := b.store.ConfigFile(img.ID)
		if err != nil {
			return fail(err)
		}
		st.id, st.cf = img.ID, cf
		if len(cf.Config.OnBuild) > 0 {
			v.note("[Warning] berth does not run the ONBUILD triggers of %s", base)
		}
	}
	// As BuildKit: the base's ONBUILD triggers are consumed (berth does
	// not run them), and every image has a PATH.
	st.cf.Config.OnBuild = nil
	if _, ok := envList(st.cf.Config.Env).Get("PATH"); !ok {
		st.cf.Config.Env = append(st.cf.Config.Env, "PATH="+defaultPath)
	}
	st.env = append(envList(nil), st.cf.Config.Env...)
	v.done()
	return st, nil
}

// checkPlatform accepts a FROM --platform that is the host's: berth builds
// for the host only.
func (b *builder) checkPlatform(platform string) error {
	if platform == "" {
		return nil
	}
	p, err := b.expandWord(platform, b.global)
	if err != nil {
		return fmt.Errorf("--platform=%s: %w", platform, err)
	}
	want, _ := b.global.Get("TARGETPLATFORM")
	parsed, err := v1.ParsePlatform(p)
	if err != nil {
		return fmt.Errorf("--platform=%s: %w", p, err)
	}
	host, _ := v1.ParsePlatform(want)
	if parsed.OS != host.OS || parsed.Architecture != host.Architecture || (parsed.Variant != "" && parsed.Variant != host.Variant) {
		return fmt.Errorf("--platform=%s: berth builds for the host's platform (%s) only", p, want)
	}
	return nil
}

// baseImage finds a base image in the store, pulling it as the policy says.
func (b *builder) baseImage(ctx context.Context, ref string, v *vertex) (image.Image, error) {
	if b.opts.Pull != PullAlways {
		img, err := b.store.Resolve(ref)
		if err == nil || !errors.Is(err, image.ErrNotFound) {
			return img, err
		}
		if b.opts.Pull == PullNever {
			return image.Image{}, fmt.Errorf("image %q: %w, and the build does not pull", ref, image.ErrNotFound)
		}
	}
	if v != nil {
		v.note("pulling %s", ref)
	}
	return b.store.Pull(ctx, ref, b.opts.PullOptions)
}

// cacheKey is the key of a step in the build cache: its parent, what it
// does, and what it reads besides its parent (extra: the hash of the files
// a COPY copies).
func cacheKey(parent, createdBy, extra string) string {
	h := sha256.New()
	// The version changes with what berth makes of an instruction.
	fmt.Fprintf(h, "berth-build-v1\x00%s\x00%s\x00%s", parent, createdBy, extra)
	return hex.EncodeToString(h.Sum(nil))
}

// reuse takes the step the cache holds for key as the stage's next, and
// reports whether there was one.
func (b *builder) reuse(st *stage, key string, v *vertex) (bool, error) {
	s, ok, err := b.cached(key)
	if err != nil || !ok {
		return false, err
	}
	st.set(s)
	v.cached()
	return true, nil
}

// view is the stage's root so far, read-only, through its layers.
func (b *builder) view(st *stage) (*fsView, error) {
	dirs, err := b.layerDirs(st)
	if err != nil {
		return nil, err
	}
	return newLayerView(dirs)
}

// cached returns the step the cache holds for key, unless the build asks for
// none.
func (b *builder) cached(key string) (image.Step, bool, error) {
	if b.opts.NoCache {
		return image.Step{}, false, nil
	}
	return b.store.CachedStep(key)
}

// commit stores a step: cf (the stage's config changed by the step), the
// changes in diff (empty for a step of config only), its history line.
func (b *builder) commit(ctx context.Context, st *stage, key string, cf *v1.ConfigFile, diff, createdBy string) error {
	t := now()
	cf.Created = v1.Time{Time: t}
	s, err := b.store.CommitStep(ctx, image.StepCommit{
		Key:     key,
		Config:  cf,
		Diff:    diff,
		History: v1.History{Created: v1.Time{Time: t}, CreatedBy: createdBy, Comment: "berth build"},
	})
	if err != nil {
		return err
	}
	st.set(s)
	return nil
}
