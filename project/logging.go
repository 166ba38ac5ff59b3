package project

import (
	"fmt"
	"strconv"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/go-units"

	"github.com/berth-dev/berth/runtime"
)

// logConfig reads a service's `logging:` into how the monitors of its
// containers keep their output. berth writes its own line format whatever
// the driver; json-file and local differ in their limits only (docker's
// defaults: none for json-file; 20 MiB, 5 files, compressed for local,
// berth's default), none keeps nothing. The errors name the field; the
// caller names the service.
func logConfig(s types.ServiceConfig) (runtime.LogConfig, error) {
	var cfg runtime.LogConfig
	if s.Logging == nil {
		return cfg, nil
	}
	switch d := s.Logging.Driver; d {
	case "", runtime.LogDriverLocal, runtime.LogDriverJSONFile, runtime.LogDriverNone:
		cfg.Driver = d
	default:
		return cfg, fmt.Errorf("logging.driver: %q is not supported (json-file, local or none)", d)
	}
	for _, k := range sortedKeys(s.Logging.Options) {
		v := s.Logging.Options[k]
		if cfg.Driver == runtime.LogDriverNone {
			return cfg, fmt.Errorf("logging.options.%s: the none driver takes no options", k)
		}
		switch k {
		case "max-size":
			// Docker's parser for log sizes: decimal units, 1k is 1000.
			n, err := units.FromHumanSize(v)
			if err != nil || n <= 0 {
				return cfg, fmt.Errorf("logging.options.max-size: %q is not a size (as 500k, 10m or 1g)", v)
			}
			cfg.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return cfg, fmt.Errorf("logging.options.max-file: %q is not a number of files (1 or more)", v)
			}
			cfg.MaxFile = n
		case "compress":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return cfg, fmt.Errorf("logging.options.compress: %q is not true or false", v)
			}
			cfg.Compress = &b
		default:
			return cfg, fmt.Errorf("logging.options.%s: not supported (max-size, max-file or compress)", k)
		}
	}
	// Docker refuses to compress what is never rotated.
	if cfg.Compress != nil && *cfg.Compress {
		switch {
		case cfg.Driver == runtime.LogDriverJSONFile && cfg.MaxSize == 0:
			return cfg, fmt.Errorf("logging.options.compress: the json-file driver compresses rotated files only: set max-size and a max-file of 2 or more")
		case cfg.MaxFile == 1 || (cfg.Driver == runtime.LogDriverJSONFile && cfg.MaxFile == 0):
			return cfg, fmt.Errorf("logging.options.compress: a max-file of 1 keeps no rotated file to compress")
		}
	}
	return cfg, nil
}

// warnUnreadableLogs warns of the containers among cs whose logging driver
// keeps nothing to read, in docker compose's words; `logs` prints nothing
// for them and succeeds.
func (e *Engine) warnUnreadableLogs(cs []*runtime.Container) {
	for _, c := range cs {
		if !c.Spec.Log.Readable() {
			e.warn(fmt.Sprintf("Can't retrieve logs for %q: configured logging driver does not support reading", c.Spec.Name))
		}
	}
}
