package project

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// A supportKind says how much of the attribute at a path berth implements.
type supportKind int

const (
	// all of it, whatever it holds
	ruleWhole supportKind = iota
	// what its keys (or list items) hold, each checked against its own rule
	ruleKeys
	// only the value the allow function accepts
	ruleValue
)

type supportRule struct {
	rule  supportKind
	allow func(v any, p *types.Project) bool
}

// supportedPaths is what berth implements, as paths into the JSON form of the
// project (compose-go's json tags); "*" is any map key or list index.
// Whatever is set and matches no rule is reported by Unsupported. Keys that
// compose-go fills in by itself (networks.default, the name of volumes and
// networks, empty structs) are accepted here so that only what the user
// wrote shows.
var supportedPaths = map[string]supportRule{
	"name":     {rule: ruleWhole},
	"services": {rule: ruleKeys},

	"services.*":                   {rule: ruleKeys},
	"services.*.image":             {rule: ruleWhole},
	"services.*.command":           {rule: ruleWhole},
	"services.*.entrypoint":        {rule: ruleWhole},
	"services.*.environment":       {rule: ruleWhole},
	"services.*.env_file":          {rule: ruleWhole},
	"services.*.working_dir":       {rule: ruleWhole},
	"services.*.user":              {rule: ruleWhole},
	"services.*.tmpfs":             {rule: ruleWhole},
	"services.*.labels":            {rule: ruleWhole},
	"services.*.label_file":        {rule: ruleWhole}, // merged into labels by the loader
	"services.*.container_name":    {rule: ruleWhole},
	"services.*.hostname":          {rule: ruleWhole},
	"services.*.domainname":        {rule: ruleWhole},
	"services.*.stop_signal":       {rule: ruleWhole},
	"services.*.stop_grace_period": {rule: ruleWhole},
	"services.*.read_only":         {rule: ruleWhole},
	"services.*.profiles":          {rule: ruleWhole},
	"services.*.extra_hosts":       {rule: ruleWhole},
	"services.*.scale":             {rule: ruleWhole},
	"services.*.pull_policy":       {rule: ruleWhole},

	// security, honoured by the runtime or refused when loading
	// (security.go)
	"services.*.cap_add":             {rule: ruleWhole},
	"services.*.cap_drop":            {rule: ruleWhole},
	"services.*.privileged":          {rule: ruleWhole},
	"services.*.security_opt":        {rule: ruleWhole},
	"services.*.devices":             {rule: ruleWhole},
	"services.*.device_cgroup_rules": {rule: ruleWhole},
	"services.*.group_add":           {rule: ruleWhole},
	"services.*.sysctls":             {rule: ruleWhole},
	"services.*.ulimits":             {rule: ruleWhole},
	"services.*.oom_score_adj":       {rule: ruleWhole},
	"services.*.userns_mode":         {rule: ruleWhole},

	// builds, by runtime/build
	"services.*.build":                   {rule: ruleKeys},
	"services.*.build.context":           {rule: ruleWhole},
	"services.*.build.dockerfile":        {rule: ruleWhole},
	"services.*.build.dockerfile_inline": {rule: ruleWhole},
	"services.*.build.args":              {rule: ruleWhole},
	"services.*.build.target":            {rule: ruleWhole},
	"services.*.build.labels":            {rule: ruleWhole},
	"services.*.build.tags":              {rule: ruleWhole},
	"services.*.build.no_cache":          {rule: ruleWhole},
	"services.*.build.pull":              {rule: ruleWhole},
	"services.*.build.network":           {rule: ruleWhole}, // others than default, host and none are an error

	// resource limits, and replicas
	"services.*.mem_limit":                            {rule: ruleWhole},
	"services.*.mem_reservation":                      {rule: ruleWhole},
	"services.*.cpus":                                 {rule: ruleWhole},
	"services.*.cpu_shares":                           {rule: ruleWhole},
	"services.*.pids_limit":                           {rule: ruleWhole},
	"services.*.deploy":                               {rule: ruleKeys},
	"services.*.deploy.replicas":                      {rule: ruleWhole},
	"services.*.restart":                              {rule: ruleWhole},
	"services.*.deploy.restart_policy":                {rule: ruleKeys},
	"services.*.deploy.restart_policy.condition":      {rule: ruleWhole},
	"services.*.deploy.restart_policy.max_attempts":   {rule: ruleWhole},
	"services.*.deploy.resources":                     {rule: ruleKeys},
	"services.*.deploy.resources.limits":              {rule: ruleKeys},
	"services.*.deploy.resources.limits.memory":       {rule: ruleWhole},
	"services.*.deploy.resources.limits.cpus":         {rule: ruleWhole},
	"services.*.deploy.resources.limits.pids":         {rule: ruleWhole},
	"services.*.deploy.resources.reservations":        {rule: ruleKeys},
	"services.*.deploy.resources.reservations.memory": {rule: ruleWhole},

	// depends_on orders the start and waits for its conditions; restart:
	// true restarts the dependent with its dependency.
	"services.*.depends_on":            {rule: ruleKeys},
	"services.*.depends_on.*":          {rule: ruleKeys},
	"services.*.depends_on.*.required": {rule: ruleWhole},
	"services.*.depends_on.*.condition": {rule: ruleValue, allow: allowOneOf(
		types.ServiceConditionStarted, types.ServiceConditionHealthy, types.ServiceConditionCompletedSuccessfully)},
	"services.*.depends_on.*.restart": {rule: ruleWhole},

	// healthchecks, run by each container's monitor
	"services.*.healthcheck":                {rule: ruleKeys},
	"services.*.healthcheck.test":           {rule: ruleWhole},
	"services.*.healthcheck.interval":       {rule: ruleWhole},
	"services.*.healthcheck.timeout":        {rule: ruleWhole},
	"services.*.healthcheck.retries":        {rule: ruleWhole},
	"services.*.healthcheck.start_period":   {rule: ruleWhole},
	"services.*.healthcheck.start_interval": {rule: ruleWhole},
	"services.*.healthcheck.disable":        {rule: ruleWhole},

	// networking: bridge networks with aliases and fixed addresses,
	// host/none/service:/container: modes, published ports
	"services.*.networks":                {rule: ruleKeys},
	"services.*.networks.*":              {rule: ruleKeys},
	"services.*.networks.*.aliases":      {rule: ruleWhole},
	"services.*.networks.*.ipv4_address": {rule: ruleWhole},
	"services.*.networks.*.priority":     {rule: ruleWhole},
	"services.*.network_mode":            {rule: ruleWhole},
	"services.*.ports":                   {rule: ruleKeys},
	"services.*.ports.*":                 {rule: ruleKeys},
	"services.*.ports.*.target":          {rule: ruleWhole},
	"services.*.ports.*.published":       {rule: ruleWhole},
	"services.*.ports.*.host_ip":         {rule: ruleWhole},
	"services.*.ports.*.protocol":        {rule: ruleValue, allow: allowOneOf("tcp", "udp")},
	"services.*.ports.*.mode":            {rule: ruleValue, allow: allowOneOf("ingress", "host")},
	"services.*.expose":                  {rule: ruleWhole},

	// logging: berth's own log files with docker's limits; the driver and
	// the options' values are checked by logConfig, with one error
	"services.*.logging":                  {rule: ruleKeys},
	"services.*.logging.driver":           {rule: ruleWhole},
	"services.*.logging.options":          {rule: ruleKeys},
	"services.*.logging.options.max-size": {rule: ruleWhole},
	"services.*.logging.options.max-file": {rule: ruleWhole},
	"services.*.logging.options.compress": {rule: ruleWhole},

	"services.*.volumes":                         {rule: ruleKeys},
	"services.*.volumes.*":                       {rule: ruleKeys},
	"services.*.volumes.*.type":                  {rule: ruleValue, allow: allowOneOf(types.VolumeTypeBind, types.VolumeTypeVolume, types.VolumeTypeTmpfs)},
	"services.*.volumes.*.source":                {rule: ruleWhole},
	"services.*.volumes.*.target":                {rule: ruleWhole},
	"services.*.volumes.*.read_only":             {rule: ruleWhole},
	"services.*.volumes.*.bind":                  {rule: ruleKeys},
	"services.*.volumes.*.bind.create_host_path": {rule: ruleWhole},
	"services.*.volumes.*.volume":                {rule: ruleKeys},
	"services.*.volumes.*.volume.nocopy":         {rule: ruleWhole},
	"services.*.volumes.*.tmpfs":                 {rule: ruleKeys},
	"services.*.volumes.*.tmpfs.size":            {rule: ruleWhole},
	"services.*.volumes.*.tmpfs.mode":            {rule: ruleWhole},

	// top level
	"volumes":                          {rule: ruleKeys},
	"volumes.*":                        {rule: ruleKeys},
	"volumes.*.name":                   {rule: ruleWhole},
	"volumes.*.external":               {rule: ruleWhole},
	"volumes.*.labels":                 {rule: ruleWhole},
	"volumes.*.driver":                 {rule: ruleValue, allow: allowEqual("local")},
	"networks":                         {rule: ruleKeys},
	"networks.*":                       {rule: ruleKeys},
	"networks.*.name":                  {rule: ruleWhole},
	"networks.*.external":              {rule: ruleWhole},
	"networks.*.internal":              {rule: ruleWhole},
	"networks.*.labels":                {rule: ruleWhole},
	"networks.*.driver":                {rule: ruleValue, allow: allowEqual("bridge")},
	"networks.*.ipam":                  {rule: ruleKeys},
	"networks.*.ipam.config":           {rule: ruleKeys},
	"networks.*.ipam.config.*":         {rule: ruleKeys},
	"networks.*.ipam.config.*.subnet":  {rule: ruleWhole},
	"networks.*.ipam.config.*.gateway": {rule: ruleWhole},
	"configs":                          {rule: ruleKeys},
	"secrets":                          {rule: ruleKeys},
	"models":                           {rule: ruleKeys},
	"jobs":                             {rule: ruleKeys},
}

func allowEqual(want any) func(any, *types.Project) bool {
	return func(v any, _ *types.Project) bool { return v == want }
}

func allowOneOf(want ...string) func(any, *types.Project) bool {
	return func(v any, _ *types.Project) bool {
		for _, w := range want {
			if v == w {
				return true
			}
		}
		return false
	}
}

// Unsupported returns the attributes set in the project that berth does not
// implement yet, as sorted dotted paths (services.web.ports,
// services.web.volumes[0].bind.propagation, networks.front). Extensions
// (x-*) are not reported, nor disabled services.
func Unsupported(p *types.Project) []string {
	raw, err := p.MarshalJSON()
	if err != nil {
		// compose-go's own types always marshal; say so rather than nothing
		return []string{fmt.Sprintf("(cannot inspect the project: %v)", err)}
	}
	var model map[string]any
	if err := json.Unmarshal(raw, &model); err != nil {
		return []string{fmt.Sprintf("(cannot inspect the project: %v)", err)}
	}
	w := unsupportedWalker{project: p}
	w.walkKeys(model, nil, nil)
	sort.Strings(w.found)
	return w.found
}

type unsupportedWalker struct {
	project *types.Project
	found   []string
}

// walkKeys checks each key of a map (or item of a list) against the rules:
// pattern is the path with "*" where rules may generalise, shown the path
// as the user reads it.
func (w *unsupportedWalker) walkKeys(v any, pattern, shown []string) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if strings.HasPrefix(k, "x-") {
				continue
			}
			w.check(child, append(pattern[:len(pattern):len(pattern)], k), append(shown[:len(shown):len(shown)], k))
		}
	case []any:
		for i, child := range v {
			s := append([]string{}, shown...)
			s[len(s)-1] += fmt.Sprintf("[%d]", i)
			w.check(child, append(pattern[:len(pattern):len(pattern)], "*"), s)
		}
	}
}

func (w *unsupportedWalker) check(v any, pattern, shown []string) {
	if unsetJSON(v) {
		return
	}
	r, ok := lookupRule(pattern)
	switch {
	case !ok:
		w.found = append(w.found, strings.Join(shown, "."))
	case r.rule == ruleKeys:
		w.walkKeys(v, pattern, shown)
	case r.rule == ruleValue && !r.allow(v, w.project):
		w.found = append(w.found, strings.Join(shown, "."))
	}
}

func lookupRule(pattern []string) (supportRule, bool) {
	if r, ok := supportedPaths[strings.Join(pattern, ".")]; ok {
		return r, true
	}
	for key, r := range supportedPaths {
		if pathMatches(strings.Split(key, "."), pattern) {
			return r, true
		}
	}
	return supportRule{}, false
}

func pathMatches(rulePath, path []string) bool {
	if len(rulePath) != len(path) {
		return false
	}
	for i := range rulePath {
		if rulePath[i] != "*" && rulePath[i] != path[i] {
			return false
		}
	}
	return true
}

// empty is what compose-go leaves in its JSON for attributes nobody set.
func unsetJSON(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}
