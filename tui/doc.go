// Package tui is berth's terminal UI (bubbletea): the service list, the
// live log view and actions on a project, a front end of the same state
// and log stream that `berth up` and `berth logs -f` read.
//
// It reads and acts through a Source, which berth's commands implement
// over project.Engine: the package neither starts containers nor parses
// compose files, and imports neither project nor runtime. Run is the
// whole program; what quitting means is the caller's (Exit).
//
// Files by concern: source.go is the contract with the caller, run.go the
// entry point and options; model.go the root model and its messages;
// feed.go how log lines get from the Source's goroutines to the model, in
// batches; store.go the ring of lines kept per service; view.go the log
// pane's logic (which lines, scrolling, following, search) and render.go
// all drawing; services.go the service list; keys.go, actions.go and
// styles.go what their names say.
package tui
