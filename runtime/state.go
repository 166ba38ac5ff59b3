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
	// Dead: the state says running but the monitor is gone (killed, or the
	// host rebooted). The container can be started again or removed.
	Dead Status = "dead"
)

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
	RestartCount int       `json:"restartCount,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	StartedAt    time.Time `json:"startedAt,omitzero"`
	FinishedAt   time.Time `json:"finishedAt,omitzero"`
}
