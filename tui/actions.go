package tui

// Actions on the selected service, and the shell. They run in tea
// commands, so a stop that waits ten seconds for its container leaves the
// screen alive; their errors end up in the footer.

import (
	"os/exec"
	"sync"

	tea "charm.land/bubbletea/v2"
)

// calls counts the Source calls that commands have in flight, so that Run
// returns only once none is left: a restart the user started finishes
// before the caller takes the project back (and, for `up --tui`, stops
// it), and nothing calls the Source after Run returned.
type calls struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// begin tells whether a call may start; end must follow a true.
func (c *calls) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

func (c *calls) end() { c.wg.Done() }

// close lets no more calls start and waits for those in flight.
func (c *calls) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
}

// acted is an action on a service ("" for all), and how it went.
type acted struct {
	action  Action
	service string
	err     error
}

type actedMsg acted

// shellMsg carries the command Source.Shell made for a container.
type shellMsg struct {
	container string
	cmd       *exec.Cmd
	err       error
}

// shellDoneMsg: the shell in container ended.
type shellDoneMsg struct {
	container string
	err       error
}

// target is the service of the selected row, "" on the row of all.
func (m *model) target() string {
	if c, ok := m.list.selected(); ok {
		return c.Service
	}
	return ""
}

func targetName(service string) string {
	if service == "" {
		return "all services"
	}
	return service
}

var (
	doing = map[Action]string{Restart: "restarting", Stop: "stopping", Start: "starting"}
	done  = map[Action]string{Restart: "restarted", Stop: "stopped", Start: "started"}
)

// act runs a on service. One action runs at a time: the engine would
// only make the second wait for the project's lock, or fail on it.
func (m *model) act(a Action, service string) tea.Cmd {
	if m.busy != "" {
		m.note("still " + m.busy + "…")
		return nil
	}
	m.busy = doing[a] + " " + targetName(service)
	m.note(m.busy + "…")
	ctx, src, calls := m.ctx, m.src, m.calls
	return func() tea.Msg {
		if !calls.begin() {
			return nil
		}
		defer calls.end()
		return actedMsg{action: a, service: service, err: src.Act(ctx, a, service)}
	}
}

func (m *model) acted(msg actedMsg) {
	m.busy = ""
	if msg.err != nil {
		m.fail(msg.action.String() + " " + targetName(msg.service) + ": " + msg.err.Error())
		return
	}
	m.note(targetName(msg.service) + " " + done[msg.action])
}

// openShell asks the Source for a shell in the selected container.
func (m *model) openShell() tea.Cmd {
	c, ok := m.list.selected()
	if !ok {
		m.fail("select a container to open a shell in")
		return nil
	}
	if c.State != Running {
		m.fail(c.Name + " is " + string(c.State) + ": start it first (u)")
		return nil
	}
	ctx, src, calls := m.ctx, m.src, m.calls
	return func() tea.Msg {
		if !calls.begin() {
			return nil
		}
		defer calls.end()
		cmd, err := src.Shell(ctx, c.Name)
		return shellMsg{container: c.Name, cmd: cmd, err: err}
	}
}

// shell hands the terminal to the shell's command.
func (m *model) shell(msg shellMsg) tea.Cmd {
	if msg.err != nil {
		m.fail("shell in " + msg.container + ": " + msg.err.Error())
		return nil
	}
	m.note("shell in " + msg.container)
	return tea.ExecProcess(msg.cmd, func(err error) tea.Msg {
		return shellDoneMsg{container: msg.container, err: err}
	})
}

func (m *model) shellDone(msg shellDoneMsg) {
	if msg.err != nil {
		m.fail("shell in " + msg.container + ": " + msg.err.Error())
		return
	}
	m.note("back from the shell in " + msg.container)
}
