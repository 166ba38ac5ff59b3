package project

import (
	"reflect"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/runtime"
)

func TestLogConfig(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name    string
		logging *types.LoggingConfig
		want    runtime.LogConfig
		err     string
	}{
		{"unset", nil, runtime.LogConfig{}, ""},
		{"default driver", &types.LoggingConfig{Options: types.Options{"max-size": "10m"}},
			runtime.LogConfig{MaxSize: 10_000_000}, ""},
		{"local", &types.LoggingConfig{Driver: "local", Options: types.Options{"max-size": "1k", "max-file": "3", "compress": "false"}},
			runtime.LogConfig{Driver: "local", MaxSize: 1000, MaxFile: 3, Compress: &no}, ""},
		{"json-file", &types.LoggingConfig{Driver: "json-file", Options: types.Options{"max-size": "1.5m", "max-file": "2", "compress": "true"}},
			runtime.LogConfig{Driver: "json-file", MaxSize: 1_500_000, MaxFile: 2, Compress: &yes}, ""},
		{"json-file unlimited", &types.LoggingConfig{Driver: "json-file"}, runtime.LogConfig{Driver: "json-file"}, ""},
		{"size units", &types.LoggingConfig{Options: types.Options{"max-size": "1g"}}, runtime.LogConfig{MaxSize: 1_000_000_000}, ""},
		{"none", &types.LoggingConfig{Driver: "none"}, runtime.LogConfig{Driver: "none"}, ""},

		{"unknown driver", &types.LoggingConfig{Driver: "syslog"}, runtime.LogConfig{},
			`logging.driver: "syslog" is not supported (json-file, local or none)`},
		{"unknown option", &types.LoggingConfig{Driver: "json-file", Options: types.Options{"tag": "x"}}, runtime.LogConfig{},
			"logging.options.tag: not supported (max-size, max-file or compress)"},
		{"options of none", &types.LoggingConfig{Driver: "none", Options: types.Options{"max-size": "1m"}}, runtime.LogConfig{},
			"logging.options.max-size: the none driver takes no options"},
		{"bad size", &types.LoggingConfig{Options: types.Options{"max-size": "lots"}}, runtime.LogConfig{},
			`logging.options.max-size: "lots" is not a size`},
		{"zero size", &types.LoggingConfig{Options: types.Options{"max-size": "0"}}, runtime.LogConfig{},
			`logging.options.max-size: "0" is not a size`},
		{"bad count", &types.LoggingConfig{Options: types.Options{"max-file": "0"}}, runtime.LogConfig{},
			`logging.options.max-file: "0" is not a number of files`},
		{"bad bool", &types.LoggingConfig{Options: types.Options{"compress": "maybe"}}, runtime.LogConfig{},
			`logging.options.compress: "maybe" is not true or false`},
		{"compress unrotated json-file", &types.LoggingConfig{Driver: "json-file", Options: types.Options{"compress": "true", "max-file": "3"}}, runtime.LogConfig{},
			"logging.options.compress: the json-file driver compresses rotated files only"},
		{"compress one file", &types.LoggingConfig{Driver: "local", Options: types.Options{"compress": "true", "max-file": "1"}}, runtime.LogConfig{},
			"logging.options.compress: a max-file of 1 keeps no rotated file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := service("web", func(s *types.ServiceConfig) { s.Logging = tt.logging })
			got, err := logConfig(s)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("err %q is not one line", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("logConfig = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// The container's spec carries the logging config, and its error names the
// field for the caller to name the service.
func TestContainerSpecLogging(t *testing.T) {
	in := specInput{Project: &types.Project{Name: "p"}, Number: 1}
	in.Image.Config.Cmd = []string{"true"}
	in.Service = service("web", func(s *types.ServiceConfig) {
		s.Logging = &types.LoggingConfig{Driver: "json-file", Options: types.Options{"max-size": "2k"}}
	})
	spec, err := containerSpec(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := (runtime.LogConfig{Driver: "json-file", MaxSize: 2000}); !reflect.DeepEqual(spec.Log, want) {
		t.Errorf("spec.Log = %+v, want %+v", spec.Log, want)
	}
	in.Service.Logging.Driver = "gelf"
	if _, err := containerSpec(in); err == nil || !strings.HasPrefix(err.Error(), "logging.driver:") {
		t.Errorf("containerSpec with driver gelf: %v", err)
	}
}

func TestUnsupportedLogging(t *testing.T) {
	p := &types.Project{Name: "p", Services: types.Services{
		"web": service("web", func(s *types.ServiceConfig) {
			s.Logging = &types.LoggingConfig{Driver: "local", Options: types.Options{"max-size": "1m", "max-file": "3", "compress": "true", "tag": "x"}}
		}),
	}}
	if got, want := strings.Join(Unsupported(p), " "), "services.web.logging.options.tag"; got != want {
		t.Errorf("Unsupported = %q, want %q", got, want)
	}
}
