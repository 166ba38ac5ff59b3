package project

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/consts"
	"github.com/compose-spec/compose-go/v2/errdefs"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/compose-spec/compose-go/v2/utils"
	"go.yaml.in/yaml/v4"
)

// LoadOptions are docker compose's project options (-f, -p,
// --project-directory, --env-file, --profile) plus what Load would otherwise
// take from the process, so that tests can pass their own.
type LoadOptions struct {
	// Files are the -f files, merged in order. Empty: COMPOSE_FILE, else
	// compose.yaml (or compose.yml, docker-compose.yml, docker-compose.yaml)
	// and its override file, in the project directory or the nearest parent
	// holding one. "-" reads standard input.
	Files []string
	// ProjectName is -p. Empty: COMPOSE_PROJECT_NAME, else the top-level
	// name of the files, else the project directory's base name, normalised.
	ProjectName string
	// ProjectDir is --project-directory. Empty: the first file's directory.
	ProjectDir string
	// EnvFiles are the --env-file files. Empty: COMPOSE_ENV_FILES (comma
	// separated), else .env in the project directory.
	EnvFiles []string
	// Profiles are the --profile names. Empty: COMPOSE_PROFILES.
	Profiles []string
	// Services restricts the project to these services and their
	// dependencies (enabling profiled ones named here). Empty: all.
	Services []string
	// WorkingDir is the caller's current directory, that relative paths
	// above are relative to. Empty: os.Getwd.
	WorkingDir string
	// Env is the environment for interpolation and the COMPOSE_* variables.
	// Nil: os.Environ.
	Env []string
}

// The variables docker compose reads that compose-go does not.
const envComposeEnvFiles = "COMPOSE_ENV_FILES"

// Load reads the compose files as docker compose does (compose-go, with the
// option chain of docker compose's ToProject) and returns the resolved
// project: interpolated, merged, normalised, paths absolute, env_file
// merged into environment and dropped, inactive profiles disabled, unused
// networks and volumes dropped. The warnings are for the user: the keys
// berth ignores (one line, see Unsupported) and what default file discovery
// noticed. compose-go logs some warnings of its own through logrus, as
// docker compose shows them.
//
// Errors name the compose files; those about their content are
// ErrInvalidConfig, with ErrUndefinedService, ErrDependencyCycle or
// ErrNoSuchService where they apply, and ErrNoConfigFile when there is no
// file to load.
func Load(ctx context.Context, opts LoadOptions) (*types.Project, []string, error) {
	l, err := newLoad(opts)
	if err != nil {
		return nil, nil, err
	}
	o, err := l.options()
	if err != nil {
		return nil, nil, err
	}
	if len(o.ConfigPaths) == 0 {
		return nil, nil, fmt.Errorf("%w: %w", ErrNoConfigFile, errdefs.ErrNotFound)
	}
	l.files = o.ConfigPaths
	if name := o.Environment[consts.ComposeProjectName]; opts.ProjectName == "" && name != "" && name != loader.NormalizeProjectName(name) {
		return nil, nil, loader.InvalidProjectNameErr(name)
	}
	if err := l.checkSyntax(); err != nil {
		return nil, nil, err
	}
	p, err := o.LoadProject(ctx)
	if err != nil {
		return nil, nil, l.explain(ctx, err)
	}
	if err := p.CheckContainerNameUnicity(); err != nil {
		return nil, nil, &fileError{l.displayFiles(), err}
	}
	if keys := Unsupported(p); len(keys) > 0 {
		l.warnings = append(l.warnings, fmt.Sprintf("%s: berth does not support yet (ignored): %s", l.displayFiles(), strings.Join(keys, ", ")))
	}
	return p, l.warnings, nil
}

// loadRun is one run of Load: the options made absolute against the caller's
// directory, so that nothing depends on the process's.
type loadRun struct {
	opts     LoadOptions
	wd       string
	env      []string
	envMap   map[string]string
	files    []string // the config files, absolute, once known
	warnings []string
}

func newLoad(opts LoadOptions) (*loadRun, error) {
	l := &loadRun{opts: opts, wd: opts.WorkingDir, env: opts.Env}
	if l.wd == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		l.wd = wd
	}
	wd, err := filepath.Abs(l.wd)
	if err != nil {
		return nil, err
	}
	l.wd = wd
	if l.env == nil {
		l.env = os.Environ()
	}
	l.envMap = utils.GetAsEqualsMap(l.env)
	if _, ok := l.envMap["PWD"]; !ok {
		// docker compose sets it for interpolation when the shell did not
		l.env = append(l.env[:len(l.env):len(l.env)], "PWD="+l.wd)
		l.envMap["PWD"] = l.wd
	}
	l.opts.Files = l.absAll(opts.Files)
	if opts.ProjectDir != "" {
		l.opts.ProjectDir = l.abs(opts.ProjectDir)
	}
	envFiles := opts.EnvFiles
	if len(envFiles) == 0 {
		envFiles = strings.FieldsFunc(l.envMap[envComposeEnvFiles], func(r rune) bool { return r == ',' })
	}
	l.opts.EnvFiles = l.absAll(envFiles)
	return l, nil
}

func (l *loadRun) abs(path string) string {
	if path == "-" || filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(l.wd, path)
}

func (l *loadRun) absAll(paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, l.abs(p))
	}
	return out
}

// options is docker compose's chain (cmd/compose/compose.go, ToProject and
// toProjectOptions) with the steps that look at the process's directory or
// environment replaced by ones that look at the load's.
func (l *loadRun) options(extra ...cli.ProjectOptionsFn) (*cli.ProjectOptions, error) {
	fns := []cli.ProjectOptionsFn{
		// what docker compose's `up` asks of the loader
		cli.WithResolvedPaths(true),
		cli.WithDiscardEnvFile,
		cli.WithoutUnnecessaryResources,
	}
	if len(l.opts.Services) > 0 {
		fns = append(fns, cli.WithSelectedServices(l.opts.Services...))
	}
	fns = append(fns, extra...)
	if l.opts.ProjectDir != "" {
		fns = append(fns, cli.WithWorkingDirectory(l.opts.ProjectDir))
	} else if l.onlyStdin() {
		fns = append(fns, cli.WithWorkingDirectory(l.wd))
	}
	fns = append(fns,
		cli.WithEnv(l.env),
		// .env of the current directory first: it may set COMPOSE_FILE
		l.withEnvFiles,
		cli.WithDotEnv,
		l.withConfigFileEnv,
		l.withDefaultConfigPath,
		// then that of the project directory, once known
		l.withEnvFiles,
		cli.WithDotEnv,
		cli.WithDefaultProfiles(l.opts.Profiles...),
		cli.WithName(l.opts.ProjectName),
	)
	return cli.NewProjectOptions(l.opts.Files, fns...)
}

func (l *loadRun) onlyStdin() bool {
	for _, f := range l.opts.Files {
		if f != "-" {
			return false
		}
	}
	return len(l.opts.Files) > 0
}

// dir is the project directory as compose-go's GetWorkingDir finds it, with
// the load's directory in place of the process's.
func (l *loadRun) dir(o *cli.ProjectOptions) string {
	if o.WorkingDir != "" {
		return o.WorkingDir
	}
	for _, f := range o.ConfigPaths {
		if f != "-" {
			return filepath.Dir(f)
		}
	}
	return l.wd
}

// withEnvFiles is cli.WithEnvFiles: --env-file, else .env in the project
// directory if there is one, unless COMPOSE_DISABLE_ENV_FILE.
func (l *loadRun) withEnvFiles(o *cli.ProjectOptions) error {
	if len(l.opts.EnvFiles) > 0 {
		o.EnvFiles = l.opts.EnvFiles
		return nil
	}
	if v, ok := l.envMap[consts.ComposeDisableDefaultEnvFile]; ok {
		disable, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s: %w", consts.ComposeDisableDefaultEnvFile, err)
		}
		if disable {
			return nil
		}
	}
	dotEnv := filepath.Join(l.dir(o), ".env")
	fi, err := os.Stat(dotEnv)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case errors.Is(err, os.ErrPermission):
		l.warnings = append(l.warnings, fmt.Sprintf("cannot access %s, ignoring default env file: %v", dotEnv, err))
		return nil
	case err != nil:
		return err
	}
	if !fi.IsDir() {
		o.EnvFiles = []string{dotEnv}
	}
	return nil
}

// withConfigFileEnv is cli.WithConfigFileEnv: COMPOSE_FILE, split on
// COMPOSE_PATH_SEPARATOR (default ':'), when there is no -f.
func (l *loadRun) withConfigFileEnv(o *cli.ProjectOptions) error {
	if len(o.ConfigPaths) > 0 {
		return nil
	}
	value, ok := o.Environment[consts.ComposeFilePath]
	if !ok {
		return nil
	}
	sep := o.Environment[consts.ComposePathSeparator]
	if sep == "" {
		sep = string(os.PathListSeparator)
	}
	for _, entry := range strings.Split(value, sep) {
		if entry == "" {
			continue
		}
		path := l.abs(entry)
		if path != "-" {
			if err := regularFile(path); err != nil {
				return fmt.Errorf("compose file %q set by COMPOSE_FILE environment variable is invalid: %w", entry, err)
			}
		}
		o.ConfigPaths = append(o.ConfigPaths, path)
	}
	return nil
}

func regularFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s is a directory", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

// withDefaultConfigPath is cli.WithDefaultConfigPath: the first of the
// default names in the project directory, or the nearest parent that has
// one, with its override file. Not finding any is left to Load.
func (l *loadRun) withDefaultConfigPath(o *cli.ProjectOptions) error {
	if len(o.ConfigPaths) > 0 {
		return nil
	}
	for dir := l.dir(o); ; dir = filepath.Dir(dir) {
		if files := existingFiles(dir, cli.DefaultFileNames); len(files) > 0 {
			if len(files) > 1 {
				l.warnings = append(l.warnings, fmt.Sprintf("Found multiple config files with supported names: %s; using %s", strings.Join(files, ", "), files[0]))
			}
			o.ConfigPaths = append(o.ConfigPaths, files[0])
			if overrides := existingFiles(dir, cli.DefaultOverrideFileNames); len(overrides) > 0 {
				if len(overrides) > 1 {
					l.warnings = append(l.warnings, fmt.Sprintf("Found multiple override files with supported names: %s; using %s", strings.Join(overrides, ", "), overrides[0]))
				}
				o.ConfigPaths = append(o.ConfigPaths, overrides[0])
			}
			return nil
		}
		if filepath.Dir(dir) == dir {
			return nil
		}
	}
}

func existingFiles(dir string, names []string) []string {
	var out []string
	for _, n := range names {
		f := filepath.Join(dir, n)
		if _, err := os.Stat(f); err == nil {
			out = append(out, f)
		}
	}
	return out
}

// checkSyntax parses every file as YAML first: compose-go reports a syntax
// error without saying in which file.
func (l *loadRun) checkSyntax() error {
	for _, f := range l.files {
		if f == "-" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return &fileError{l.display(f), err}
			}
		}
	}
	return nil
}

// explain turns a loader error into one that names the files, and gives
// the depends_on errors their sentinels: compose-go checks them as strings
// only, so the project is loaded again without its consistency checks and
// looked at here.
func (l *loadRun) explain(ctx context.Context, err error) error {
	if file, msg, ok := strings.Cut(err.Error(), ": "); ok && strings.HasPrefix(file, "validating ") {
		return &fileError{l.display(strings.TrimPrefix(file, "validating ")), errors.New(schemaMessage(msg))}
	}
	if specific := l.recheck(ctx); specific != nil {
		err = specific
	}
	return &fileError{l.displayFiles(), err}
}

func (l *loadRun) recheck(ctx context.Context) error {
	saved := l.warnings
	defer func() { l.warnings = saved }()
	selected := l.opts.Services
	l.opts.Services = nil
	defer func() { l.opts.Services = selected }()

	o, err := l.options(cli.WithConsistency(false))
	if err != nil {
		return nil
	}
	p, err := o.LoadProject(ctx)
	if err != nil {
		return nil
	}
	for _, name := range selected {
		if _, ok := p.AllServices()[name]; !ok {
			return fmt.Errorf("%w: %s", ErrNoSuchService, name)
		}
	}
	if _, err := NewGraph(p); err != nil {
		return err
	}
	return nil
}

// schemaMessage rewords compose-go's schema errors where they speak JSON
// schema rather than compose.
func schemaMessage(msg string) string {
	msg = strings.TrimSpace(msg)
	if path, ok := strings.CutSuffix(msg, " false schema"); ok {
		// a key that no property, pattern or extension allows
		parent, key := "", path
		if i := strings.LastIndex(path, "."); i >= 0 {
			parent, key = path[:i], path[i+1:]
		}
		return withPath(parent, fmt.Sprintf("unknown key '%s'", key))
	}
	if rest, ok := strings.CutSuffix(msg, " not allowed"); ok {
		if path, keys, ok := strings.Cut(rest, "additional properties "); ok {
			noun := "unknown key "
			if strings.Contains(keys, ",") {
				noun = "unknown keys "
			}
			return withPath(strings.TrimSpace(path), noun+keys)
		}
	}
	if path, want, ok := strings.Cut(msg, " must be a "); ok {
		words := strings.Fields(want)
		for i, w := range words {
			switch strings.TrimSuffix(w, ",") {
			case "array":
				words[i] = strings.Replace(w, "array", "list", 1)
			}
		}
		article := "a "
		if strings.HasPrefix(words[0], "integer") {
			article = "an "
		}
		return path + " must be " + article + strings.Join(words, " ")
	}
	return msg
}

func withPath(path, msg string) string {
	if path == "" {
		return msg
	}
	return path + ": " + msg
}

// display is how errors and warnings name a file: relative to the caller's
// directory when it is below it.
func (l *loadRun) display(path string) string {
	if path == "-" {
		return "(stdin)"
	}
	if rel, err := filepath.Rel(l.wd, path); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return rel
	}
	return path
}

func (l *loadRun) displayFiles() string {
	names := make([]string, 0, len(l.files))
	for _, f := range l.files {
		names = append(names, l.display(f))
	}
	return strings.Join(names, ", ")
}

// MarshalConfig prints the project as `docker compose config` does, in
// "yaml" or "json": compose-go's marshalling, with $ escaped as $$ so that
// the output loads again to the same project.
func MarshalConfig(p *types.Project, format string) ([]byte, error) {
	var out []byte
	var err error
	switch format {
	case "yaml", "":
		out, err = p.MarshalYAML()
	case "json":
		out, err = p.MarshalJSON()
	default:
		return nil, fmt.Errorf("unsupported format %q: use yaml or json", format)
	}
	if err != nil {
		return nil, err
	}
	return bytes.ReplaceAll(out, []byte("$"), []byte("$$")), nil
}

// ServiceNames returns the project's services as `docker compose config
// --services` lists them: dependencies first, and by name where compose
// leaves the order open.
func ServiceNames(p *types.Project) []string {
	g, err := NewGraph(p)
	if err != nil {
		return p.ServiceNames()
	}
	return g.Order()
}
