package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// writeFileAtomic replaces path with data so that a reader sees either the
// old content or the new one, never a torn file: write a temporary file in
// the same directory, then rename it over path. No fsync: the state of a
// container does not outlive a crash of the host (its processes do not
// either), so a lost update after a power cut costs nothing.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writeJSONAtomic writes v as indented JSON with writeFileAtomic.
func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'), 0o644)
}

// readJSON decodes the JSON file at path into v.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func readState(dir string) (State, error) {
	path := filepath.Join(dir, stateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return State{}, err
	}
	st, err := decodeState(data)
	if err != nil {
		return State{}, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// decodeState parses a state file. Beyond its JSON it checks what berth
// relies on: a status it knows (one it does not would pass for not
// running, and a container could be removed or started twice) and no
// negative PID (kill(2) reads those as process groups).
func decodeState(data []byte) (State, error) {
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, err
	}
	if !st.Status.valid() {
		return State{}, fmt.Errorf("unknown status %q", st.Status)
	}
	if st.Pid < 0 || st.MonitorPid < 0 {
		return State{}, errors.New("negative pid")
	}
	return st, nil
}

func writeState(dir string, st State) error {
	return writeJSONAtomic(filepath.Join(dir, stateFile), st)
}

func readSpec(dir string) (Spec, error) {
	var spec Spec
	err := readJSON(filepath.Join(dir, configFile), &spec)
	return spec, err
}

// labelsFile keeps a copy of the Spec's labels beside config.json, written
// once by Create with it: the labels are how a container is found to
// belong to a project, and a container whose config.json is lost must
// still be found, shown and removed with its project.
const labelsFile = "labels.json"

// readLabels reads the copy of a container's labels; nil when it cannot.
func readLabels(dir string) map[string]string {
	var labels map[string]string
	if readJSON(filepath.Join(dir, labelsFile), &labels) != nil {
		return nil
	}
	return labels
}

// fileFault says why file of a container's directory cannot be used, as a
// user reads it: "state.json: unexpected end of JSON input".
func fileFault(file string, err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	} else if u := errors.Unwrap(err); u != nil {
		// readJSON and readState name the file by its path: keep only
		// the cause.
		err = u
	}
	return file + ": " + err.Error()
}

// procStat returns the state letter (field 3) and the start time in clock
// ticks since boot (field 22) of /proc/PID/stat. The command name (field 2)
// may hold spaces and parentheses, so fields are counted from the last ')'.
func procStat(pid int) (state byte, start uint64, err error) {
	if pid <= 0 {
		return 0, 0, fmt.Errorf("invalid pid %d", pid)
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	// After ") " come fields 3, 4, …: the start time is the 20th of them.
	fields := bytes.Fields(data[i+1:])
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	start, err = strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return fields[0][0], start, nil
}

// procStartTime is the start time of process pid in clock ticks since boot.
func procStartTime(pid int) (uint64, error) {
	_, start, err := procStat(pid)
	return start, err
}

// processAlive reports whether pid is still the process that started at
// start (not a recycled PID) and has not exited. A zombie counts as gone: a
// monitor whose parent (a long-lived berth command) has not reaped it yet is
// finished all the same.
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	state, st, err := procStat(pid)
	if err != nil {
		return false
	}
	return st == start && state != 'Z' && state != 'X' && state != 'x'
}
