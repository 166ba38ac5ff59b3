package project

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/runtime"
)

// ContainerEvent is a runtime event with the compose names it belongs to.
type ContainerEvent struct {
	runtime.Event
	Service string
	// Image is the image reference of the container, when it is known.
	Image string
}

// eventPoll is how often FollowEvents looks for new lines at the end of
// the log.
const eventPoll = 50 * time.Millisecond

// EventOptions select the events FollowEvents reports.
type EventOptions struct {
	// Since replays the events recorded from then on first (zero: only
	// new events).
	Since time.Time
	// Until ends the stream once it has passed (zero: never); with Until
	// in the past, FollowEvents reports what the log holds and returns.
	Until time.Time
}

// FollowEvents calls fn with each event of project's containers in the
// order they were written, from now on (or from opts.Since), until ctx is
// done, opts.Until has passed, or fn fails. The log may not exist yet: the
// first container creates it.
func (e *Engine) FollowEvents(ctx context.Context, project string, opts EventOptions, fn func(ContainerEvent) error) error {
	path := e.EventLogPath(project)
	names := eventNames{e: e, project: project, service: map[string]string{}, image: map[string]string{}}
	var (
		f    *os.File
		rd   *bufio.Reader
		line []byte
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	// The log as it is now is history: follow from its end, unless asked
	// for what happened since a time.
	if cur, err := os.Open(path); err == nil {
		if opts.Since.IsZero() {
			if _, err := cur.Seek(0, io.SeekEnd); err != nil {
				cur.Close()
				return err
			}
		}
		f, rd = cur, bufio.NewReader(cur)
	}
	tick := time.NewTicker(eventPoll)
	defer tick.Stop()
	for {
		if f != nil {
			for {
				chunk, err := rd.ReadBytes('\n')
				line = append(line, chunk...)
				if err != nil {
					break // a partial line waits for its end
				}
				var ev runtime.Event
				if json.Unmarshal(line, &ev) == nil && !ev.Time.Before(opts.Since) {
					if !opts.Until.IsZero() && ev.Time.After(opts.Until) {
						return nil
					}
					if err := fn(names.annotate(ev)); err != nil {
						return err
					}
				}
				line = line[:0]
			}
		}
		if !opts.Until.IsZero() && time.Now().After(opts.Until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		// The log appears, or was replaced: read the new one from its
		// start.
		if replaced(f, path) {
			cur, err := os.Open(path)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if f != nil {
				f.Close()
				f = nil
			}
			if cur != nil {
				f, rd, line = cur, bufio.NewReader(cur), line[:0]
			}
		}
	}
}

// replaced reports whether path is now another file than f (or one exists
// where f is nil).
func replaced(f *os.File, path string) bool {
	var now syscall.Stat_t
	if syscall.Stat(path, &now) != nil {
		return false
	}
	if f == nil {
		return true
	}
	var cur syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &cur) != nil {
		return true
	}
	return cur.Ino != now.Ino || cur.Dev != now.Dev
}

// eventNames finds the service and image of the containers events name,
// from their labels while they exist, remembered after they are removed.
type eventNames struct {
	e       *Engine
	project string
	service map[string]string
	image   map[string]string
}

// replicaSuffix ends a container name: "-3", or a one-off's "-run-1a2b3c".
var replicaSuffix = regexp.MustCompile(`-(run-[0-9a-f]+|[0-9]+)$`)

func (n *eventNames) annotate(ev runtime.Event) ContainerEvent {
	if _, ok := n.service[ev.Container]; !ok {
		if c, err := n.e.runtime.Get(ev.Container); err == nil {
			n.service[ev.Container] = c.Spec.Labels[LabelService]
			n.image[ev.Container] = c.Spec.Image
		} else {
			// Gone already: its name says it, unless container_name
			// chose another.
			s := strings.TrimPrefix(ev.Container, n.project+"-")
			n.service[ev.Container] = replicaSuffix.ReplaceAllString(s, "")
		}
	}
	return ContainerEvent{Event: ev, Service: n.service[ev.Container], Image: n.image[ev.Container]}
}
