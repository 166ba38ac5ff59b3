package runtime

import "time"

// Status is the life stage of a container, as docker names them.
type Status string

const (
	// Created: the container's directory and config exist; nothing runs.
	Created Status = "created"
	// Running: its monitor and its process are alive.
	Running Status = "running"
	// Restarting: the process exited and its monitor waits to start it
	// again, as the restart policy says (restart.go).
	Restarting Status = "restarting"
	// Exited: the process ended; ExitCode says how.
	Exited Status = "exited"
	// Paused: the container's processes are frozen (cgroup freezer) by
	// `pause`; `unpause` thaws them.
	Paused Status = "paused"
	// Dead: berth cannot read the container's records (its state.json or
	// config.json is corrupt or missing; State.Error says which and why),
	// so what it runs is unknown: it can only be removed, as docker's
	// dead containers. A container whose monitor is gone is not dead but
	// exited: see Runtime.Get.
	Dead Status = "dead"
)

// valid reports whether s is one of the statuses above.
func (s Status) valid() bool {
	switch s {
	case Created, Running, Restarting, Exited, Paused, Dead:
		return true
	}
	return false
}

// Alive reports whether a monitor supervises the container's process:
// running, paused, or waiting to restart it.
func (s Status) Alive() bool { return s == Running || s == Paused || s == Restarting }

// State is what the monitor records about a container in state.json.
type State struct {
	Status Status `json:"status"`
	// Pid is the container's PID 1 as the host sees it.
	Pid int `json:"pid,omitempty"`
	// MonitorPid and MonitorStart (the start time in clock ticks from
	// /proc/PID/stat) identify the monitor; the pair guards against a
	// recycled PID.
	MonitorPid   int    `json:"monitorPid,omitempty"`
	MonitorStart uint64 `json:"monitorStart,omitempty"`
	ExitCode     int    `json:"exitCode"`
	// Error is why the container could not start, as the user should read it.
	Error     string `json:"error,omitempty"`
	OOMKilled bool   `json:"oomKilled,omitempty"`
	// RestartCount counts the restarts the policy made (not the user's).
	RestartCount int `json:"restartCount,omitempty"`
	// Health is the healthcheck's verdict while the container runs (nil:
	// the container has no healthcheck).
	Health     *Health   `json:"health,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// HealthStatus is a healthcheck's verdict, as docker names it.
type HealthStatus string

const (
	// HealthStarting: no probe has succeeded yet, and the failures so far
	// fell in the start period or are fewer than the retries.
	HealthStarting HealthStatus = "starting"
	// Healthy: the last probe succeeded.
	Healthy HealthStatus = "healthy"
	// Unhealthy: Retries probes in a row failed after the start period.
	Unhealthy HealthStatus = "unhealthy"
)

// Health is the healthcheck's record of the current run, as docker's
// State.Health.
type Health struct {
	Status HealthStatus `json:"status"`
	// FailingStreak counts the failed probes since the last success.
	FailingStreak int `json:"failingStreak"`
	// Log is the last probes, oldest first (at most five).
	Log []HealthResult `json:"log,omitempty"`
}

// HealthResult is one probe.
type HealthResult struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exitCode"`
	// Output is the probe's stdout and stderr, cut to 4 KiB as docker's.
	Output string `json:"output"`
}
