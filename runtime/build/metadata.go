package build

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/image"
)

// dispatch runs one instruction of stage st.
func (b *builder) dispatch(ctx context.Context, st *stage, cmd instructions.Command, v *vertex) error {
	// ARG expands from the environment before it; the others expand here,
	// but for RUN, whose command the shell expands, and EXPOSE, done below.
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if _, isArg := cmd.(*instructions.ArgCommand); !isArg {
			if err := e.Expand(func(word string) (string, error) { return b.expandWord(word, st.env) }); err != nil {
				return fmt.Errorf("%w: %w", ErrDockerfile, err)
			}
		}
	}
	if e, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		// Heredocs: only variables, quotes stay as they are.
		err := e.ExpandRaw(func(word string) (string, error) {
			lex := shell.NewLex(b.df.escape)
			lex.SkipProcessQuotes = true
			out, _, err := lex.ProcessWord(word, st.env)
			return out, err
		})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrDockerfile, err)
		}
	}
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		return b.run(ctx, st, c, v)
	case *instructions.CopyCommand:
		return b.copy(ctx, st, copyRequest{from: c.From, chown: c.Chown, chmod: c.Chmod, src: c.SourcesAndDest, link: c.Link, parents: c.Parents, exclude: c.ExcludePatterns, name: "COPY"}, v)
	case *instructions.WorkdirCommand:
		return b.workdir(ctx, st, c, v)
	case *instructions.AddCommand:
		if c.KeepGitDir != nil {
			return fmt.Errorf("%w: ADD --keep-git-dir: berth does not add git repositories", ErrDockerfile)
		}
		return b.copy(ctx, st, copyRequest{add: true, chown: c.Chown, chmod: c.Chmod, src: c.SourcesAndDest, link: c.Link, exclude: c.ExcludePatterns, checksum: c.Checksum, unpack: c.Unpack, name: "ADD"}, v)
	}
	createdBy, apply, err := b.metadata(st, cmd)
	if err != nil {
		return err
	}
	key := cacheKey(st.id, createdBy, "")
	if ok, err := b.reuse(st, key, v); err != nil || ok {
		return err
	}
	cf := st.cf.DeepCopy()
	apply(cf)
	if err := b.commit(ctx, st, key, cf, "", createdBy); err != nil {
		return err
	}
	v.done()
	return nil
}

// metadata works out an instruction that changes only the config: its
// history line and its change to the config. What it changes of the
// stage's own state (environment, ARGs) it changes at once.
func (b *builder) metadata(st *stage, cmd instructions.Command) (string, func(*v1.ConfigFile), error) {
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		var words []string
		for _, kv := range c.Env {
			st.env = st.env.set(kv.Key, kv.Value)
			words = append(words, kv.Key+"="+kv.Value)
		}
		return "ENV " + strings.Join(words, " "), func(cf *v1.ConfigFile) {
			cfg := &cf.Config
			for _, kv := range c.Env {
				cfg.Env = envList(cfg.Env).set(kv.Key, kv.Value)
			}
		}, nil
	case *instructions.ArgCommand:
		var words []string
		for _, kv := range c.Args {
			key, err := b.expandWord(kv.Key, st.env)
			if err != nil {
				return "", nil, fmt.Errorf("%w: %w", ErrDockerfile, err)
			}
			kv.Key = key
			value, ok, err := b.stageArg(st, kv)
			if err != nil {
				return "", nil, fmt.Errorf("%w: %w", ErrDockerfile, err)
			}
			if ok {
				st.env = st.env.set(key, value)
				words = append(words, key+"="+value)
			} else {
				words = append(words, key)
			}
		}
		return "ARG " + strings.Join(words, " "), func(*v1.ConfigFile) {}, nil
	case *instructions.LabelCommand:
		var words []string
		for _, kv := range c.Labels {
			words = append(words, kv.Key+"="+kv.Value)
		}
		return "LABEL " + strings.Join(words, " "), func(cf *v1.ConfigFile) {
			cfg := &cf.Config
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			for _, kv := range c.Labels {
				cfg.Labels[kv.Key] = kv.Value
			}
		}, nil
	case *instructions.MaintainerCommand:
		return "MAINTAINER " + c.Maintainer, func(cf *v1.ConfigFile) { cf.Author = c.Maintainer }, nil
	case *instructions.UserCommand:
		return "USER " + c.User, func(cf *v1.ConfigFile) { cf.Config.User = c.User }, nil
	case *instructions.CmdCommand:
		args := b.withShell(st, c.ShellDependantCmdLine)
		st.cmdSet = true
		return fmt.Sprintf("CMD %q", args), func(cf *v1.ConfigFile) { cf.Config.Cmd = args }, nil
	case *instructions.EntrypointCommand:
		args := b.withShell(st, c.ShellDependantCmdLine)
		keepCmd := st.cmdSet
		return fmt.Sprintf("ENTRYPOINT %q", args), func(cf *v1.ConfigFile) {
			cfg := &cf.Config
			cfg.Entrypoint = args
			// As docker: an ENTRYPOINT drops the CMD of the base image,
			// not one this stage set.
			if !keepCmd {
				cfg.Cmd = nil
			}
		}, nil
	case *instructions.ExposeCommand:
		var ports []string
		for _, p := range c.Ports {
			words, err := b.lex.ProcessWords(p, st.env)
			if err != nil {
				return "", nil, fmt.Errorf("%w: %w", ErrDockerfile, err)
			}
			for _, w := range words {
				expanded, err := image.ExposedPorts(w)
				if err != nil {
					return "", nil, fmt.Errorf("%w: EXPOSE: %w", ErrDockerfile, err)
				}
				ports = append(ports, expanded...)
			}
		}
		slices.Sort(ports)
		return "EXPOSE map[" + strings.Join(ports, ":{} ") + ":{}]", func(cf *v1.ConfigFile) {
			cfg := &cf.Config
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range ports {
				cfg.ExposedPorts[p] = struct{}{}
			}
		}, nil
	case *instructions.VolumeCommand:
		vols := slices.Clone(c.Volumes)
		for _, v := range vols {
			if v == "" {
				return "", nil, fmt.Errorf("%w: VOLUME specified can not be an empty string", ErrDockerfile)
			}
		}
		return fmt.Sprintf("VOLUME %v", vols), func(cf *v1.ConfigFile) {
			cfg := &cf.Config
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			for _, v := range vols {
				cfg.Volumes[v] = struct{}{}
			}
		}, nil
	case *instructions.StopSignalCommand:
		if err := checkSignal(c.Signal); err != nil {
			return "", nil, fmt.Errorf("%w: STOPSIGNAL: %w", ErrDockerfile, err)
		}
		return "STOPSIGNAL " + c.Signal, func(cf *v1.ConfigFile) { cf.Config.StopSignal = c.Signal }, nil
	case *instructions.HealthCheckCommand:
		hc := &v1.HealthConfig{
			Test:        slices.Clone(c.Health.Test),
			Interval:    c.Health.Interval,
			Timeout:     c.Health.Timeout,
			StartPeriod: c.Health.StartPeriod,
			Retries:     c.Health.Retries,
		}
		return fmt.Sprintf("HEALTHCHECK %q", hc.Test), func(cf *v1.ConfigFile) { cf.Config.Healthcheck = hc }, nil
	case *instructions.ShellCommand:
		sh := slices.Clone(c.Shell)
		return fmt.Sprintf("SHELL %v", sh), func(cf *v1.ConfigFile) { cf.Config.Shell = sh }, nil
	case *instructions.OnbuildCommand:
		expr := strings.TrimSpace(c.Expression)
		return "ONBUILD " + expr, func(cf *v1.ConfigFile) { cf.Config.OnBuild = append(cf.Config.OnBuild, expr) }, nil
	}
	return "", nil, fmt.Errorf("%w: %s is not supported by berth", ErrDockerfile, strings.ToUpper(cmd.Name()))
}

// workdir sets the working directory and, as BuildKit, makes it when the
// stage lacks it, owned by the stage's USER: a step of one directory then.
func (b *builder) workdir(ctx context.Context, st *stage, c *instructions.WorkdirCommand, v *vertex) error {
	dir := c.Path
	if !path.IsAbs(dir) {
		dir = path.Join("/", st.cf.Config.WorkingDir, dir)
	}
	dir = path.Clean(dir)
	createdBy := "WORKDIR " + dir
	key := cacheKey(st.id, createdBy, "user "+st.cf.Config.User)
	if ok, err := b.reuse(st, key, v); err != nil || ok {
		return err
	}
	cf := st.cf.DeepCopy()
	cf.Config.WorkingDir = dir
	image, err := b.view(st)
	if err != nil {
		return err
	}
	defer image.close()
	n, real, err := image.resolve(dir, true)
	switch {
	case err != nil:
		return fmt.Errorf("WORKDIR %s: %w", dir, err)
	case n != nil && n.isDir():
		err = b.commit(ctx, st, key, cf, "", createdBy)
	case n != nil:
		return fmt.Errorf("WORKDIR %s: %w", dir, errNotDir)
	default:
		err = b.mkdirStep(ctx, st, key, cf, image, real, createdBy)
	}
	if err != nil {
		return err
	}
	v.done()
	return nil
}

// mkdirStep commits a step that makes the directory real (and its missing
// parents) as the stage's USER.
func (b *builder) mkdirStep(ctx context.Context, st *stage, key string, cf *v1.ConfigFile, image *fsView, real, createdBy string) error {
	o, err := execOwner(image, st.cf.Config.User)
	if err != nil {
		return err
	}
	work, err := b.workDir()
	if err != nil {
		return err
	}
	diff, err := newDiffDir(work.Path("workdir"), image, meta{uid: o.uid, gid: o.gid, mode: 0o755, mtime: now()})
	if err != nil {
		return err
	}
	defer diff.close()
	if err := diff.mkdirAll(real, nil); err != nil {
		return err
	}
	if err := diff.finish(); err != nil {
		return err
	}
	return b.commit(ctx, st, key, cf, diff.dir, createdBy)
}

// withShell is the command of a CMD, ENTRYPOINT or RUN: the exec form as it
// is, the shell form run by the stage's SHELL (/bin/sh -c by default).
func (b *builder) withShell(st *stage, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	sh := st.cf.Config.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(sh), strings.Join(c.CmdLine, " "))
}

// checkSignal accepts a signal as docker does: a name with or without SIG,
// or a number.
func checkSignal(s string) error {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n <= 0 || n > 64 {
			return fmt.Errorf("invalid signal %s", s)
		}
		return nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if strings.HasPrefix(name, "SIGRTMIN") || strings.HasPrefix(name, "SIGRTMAX") {
		return nil
	}
	if unix.SignalNum(name) == 0 {
		return fmt.Errorf("invalid signal %q", s)
	}
	return nil
}
