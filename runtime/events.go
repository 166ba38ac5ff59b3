package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Event is one thing that happened to a container, as docker's events name
// them: create, start, die, restart, health_status, oom, pause, unpause,
// kill, stop, destroy. The monitor writes the ones it sees to the spec's
// EventLog; the caller of the runtime writes the others (create, destroy)
// to the same file, and `berth events` follows it.
type Event struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	// Container is the container's name, ID its 64-digit identity.
	Container string `json:"container"`
	ID        string `json:"id"`
	// Attributes add what the action needs: "exitCode" for die,
	// "healthStatus" for health_status, "signal" for kill.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// The actions the monitor records.
const (
	EventStart        = "start"
	EventDie          = "die"
	EventRestart      = "restart"
	EventHealthStatus = "health_status"
	EventOOM          = "oom"
	EventPause        = "pause"
	EventUnpause      = "unpause"
)

// AppendEvent appends ev to the event log at path as one line. A line this
// short, written with O_APPEND in one write, never interleaves with the
// lines of other writers.
func AppendEvent(path string, ev Event) error {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC()
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	return nil
}
