package build

import (
	goruntime "runtime"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// envList is an environment in order, KEY=VALUE, as a lexer reads it: a
// later entry of a key replaces the earlier one.
type envList []string

var _ shell.EnvGetter = envList(nil)

func (e envList) Get(key string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(e[i], "="); k == key {
			return v, true
		}
	}
	return "", false
}

func (e envList) Keys() []string {
	var keys []string
	for _, kv := range e {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// set returns e with key set to value, in place of an earlier entry.
func (e envList) set(key, value string) envList {
	for i, kv := range e {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			e[i] = key + "=" + value
			return e
		}
	}
	return append(e, key+"="+value)
}

// defaultPath is docker's PATH for an image that sets none; BuildKit gives
// it to every image it builds.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// proxyArgs are the build args every Dockerfile may use without an ARG:
// they reach RUN's environment, but neither the image nor its history.
var proxyArgs = []string{
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
	"FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
}

// platformArgs are BuildKit's automatic args of the global scope: the
// platform of the build and of its target, which for berth are the host's.
func platformArgs() envList {
	arch := goruntime.GOARCH
	variant := ""
	if arch == "arm" {
		variant = "v7"
	}
	platform := "linux/" + arch
	if variant != "" {
		platform += "/" + variant
	}
	var out envList
	for _, p := range []string{"BUILD", "TARGET"} {
		out = append(out,
			p+"PLATFORM="+platform, p+"OS=linux", p+"ARCH="+arch, p+"VARIANT="+variant)
	}
	return out
}

// globalArgs evaluates the ARGs before the first FROM: their values (build
// arg, else default) are what FROM lines expand, and what an ARG of the
// same name without a default takes inside a stage.
func (b *builder) globalArgs() (envList, error) {
	env := platformArgs()
	for k, v := range b.opts.Args {
		if strings.HasPrefix(k, "BUILD") || strings.HasPrefix(k, "TARGET") {
			if _, ok := env.Get(k); ok {
				env = env.set(k, v)
				b.used[k] = true
			}
		}
	}
	for _, a := range b.df.metaArgs {
		for _, kv := range a.Args {
			key, err := b.expandWord(kv.Key, env)
			if err != nil {
				return nil, err
			}
			if v, ok := b.opts.Args[key]; ok {
				b.used[key] = true
				env = env.set(key, v)
				continue
			}
			if kv.Value != nil {
				v, err := b.expandWord(*kv.Value, env)
				if err != nil {
					return nil, err
				}
				env = env.set(key, v)
			}
		}
	}
	return env, nil
}

// expandWord expands $VARIABLES in word from env, as the Dockerfile's
// instructions are expanded.
func (b *builder) expandWord(word string, env envList) (string, error) {
	out, _, err := b.lex.ProcessWord(word, env)
	return out, err
}

// stageArg evaluates one ARG of a stage: its build arg, else its default
// (expanded), else the value of the global ARG of that name. ok is false for
// an ARG of no value.
func (b *builder) stageArg(st *stage, kv instructions.KeyValuePairOptional) (value string, ok bool, err error) {
	if v, ok := b.opts.Args[kv.Key]; ok {
		b.used[kv.Key] = true
		return v, true, nil
	}
	if kv.Value != nil {
		v, err := b.expandWord(*kv.Value, st.env)
		return v, err == nil, err
	}
	v, ok := b.global.Get(kv.Key)
	return v, ok, nil
}

// runEnv is the environment of a RUN: the stage's, with the proxy build
// args the Dockerfile did not declare.
func (b *builder) runEnv(st *stage) []string {
	env := slices.Clone(st.env)
	for _, k := range proxyArgs {
		if v, ok := b.opts.Args[k]; ok {
			b.used[k] = true
			if _, declared := env.Get(k); !declared {
				env = append(env, k+"="+v)
			}
		}
	}
	return env
}

// unusedArgs are the build args no ARG of the built stages consumed, as
// docker warns about them.
func (b *builder) unusedArgs() []string {
	var out []string
	for k := range b.opts.Args {
		if !b.used[k] && !slices.Contains(proxyArgs, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
