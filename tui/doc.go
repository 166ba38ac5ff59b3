// Package tui will hold berth's terminal UI (bubbletea): the service list,
// the live log view and actions on a project, as a front end of the same
// event and log stream that `berth up` and `berth logs -f` read. It calls
// the project package and never starts containers or parses compose files
// itself.
package tui
