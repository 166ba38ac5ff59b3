package tui

import (
	"context"
	"os/exec"
	"strconv"
	"time"
)

// Source is the project as the UI sees it. berth's commands implement it
// over project.Engine; the tests, with a fake. The UI calls it from tea
// commands, never from Update, so a slow call never freezes the screen.
type Source interface {
	// Containers lists the project's containers as they are now, stopped
	// ones included. The UI calls it about once a second.
	Containers(ctx context.Context) ([]Container, error)
	// Logs follows the output of every container of the project and calls
	// emit with each line, until ctx ends; then it returns ctx.Err(), or
	// before then the error that stopped it. It may start with a tail of
	// what was written before (the UI keeps Options.LogLines per service).
	// It keeps following a container that restarts, is recreated or
	// appears later (scale, `up` of one more service): that is the point
	// of the UI. emit may be called from several goroutines at once; it
	// never blocks and keeps nothing of the line's memory but its strings.
	Logs(ctx context.Context, emit func(LogLine)) error
	// Act restarts, stops or starts the containers of service, or of every
	// service when service is "", as `berth restart|stop|start` do.
	Act(ctx context.Context, a Action, service string) error
	// Shell is the command that opens an interactive shell in the running
	// container (Container.Name) with a terminal, as `berth exec -it`. The
	// UI gives it the terminal, and takes it back when the command ends.
	Shell(ctx context.Context, container string) (*exec.Cmd, error)
}

// Container is one row of the service list.
type Container struct {
	// Name is how the UI shows the container and names it back to the
	// Source (Shell) and in LogLine: berth's log prefixes say "web-1".
	Name    string
	Service string
	State   State
	// ExitCode is the last exit code, shown with Exited, Dead and
	// Restarting.
	ExitCode int
	Health   Health
	// Ports is the published ports as `berth ps` prints them.
	Ports string
	// Restarts counts the restarts the restart policy made.
	Restarts  int
	StartedAt time.Time
	// CPUNanos is the CPU time the container used since it started, from
	// its cgroup: two samples a second apart make a CPU percentage.
	// MemoryBytes is its memory now. Both are zero when it does not run.
	CPUNanos    uint64
	MemoryBytes uint64
}

// State is a container's life stage, with docker's names (the values of
// runtime.Status).
type State string

const (
	Created    State = "created"
	Running    State = "running"
	Restarting State = "restarting"
	Exited     State = "exited"
	Paused     State = "paused"
	Dead       State = "dead"
)

// Health is a running container's healthcheck verdict, with docker's names
// (the values of runtime.HealthStatus); "" when it has no healthcheck or
// does not run.
type Health string

const (
	HealthStarting Health = "starting"
	Healthy        Health = "healthy"
	Unhealthy      Health = "unhealthy"
)

// LogLine is one line of a container's output.
type LogLine struct {
	// Container is the Container.Name of the container that wrote it.
	Container string
	Service   string
	Time      time.Time
	// Stream is "stdout" or "stderr".
	Stream string
	// Text is the line without its newline. The UI removes terminal
	// escapes and control characters before it shows it.
	Text string
}

// Action is what the user asks of a service from the UI.
type Action int

const (
	Restart Action = iota + 1
	Stop
	Start
)

func (a Action) String() string {
	switch a {
	case Restart:
		return "restart"
	case Stop:
		return "stop"
	case Start:
		return "start"
	}
	return "action " + strconv.Itoa(int(a))
}

// Exit is why Run returned. What it means for the containers is the
// caller's to decide: `berth tui` leaves them, `berth up --tui` stops them.
type Exit int

const (
	// Quit: the user pressed q.
	Quit Exit = iota
	// Interrupt: the user pressed ctrl+c.
	Interrupt
	// Canceled: the context given to Run ended.
	Canceled
)

func (e Exit) String() string {
	switch e {
	case Quit:
		return "quit"
	case Interrupt:
		return "interrupt"
	case Canceled:
		return "canceled"
	}
	return "exit"
}
