package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestWriteStateAtomic(t *testing.T) {
	dir := t.TempDir()
	if err := writeState(dir, State{Status: Created}); err != nil {
		t.Fatal(err)
	}
	// Readers running during a stream of rewrites never see a torn or
	// empty file.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := readState(dir); err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
		}
	}()
	for i := 0; i < 300; i++ {
		st := State{Status: Running, Pid: i + 1, Error: string(make([]byte, i*10))}
		if err := writeState(dir, st); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("a reader saw a partial state: %v", err)
	default:
	}
	st, err := readState(dir)
	if err != nil || st.Pid != 300 {
		t.Fatalf("last state: %+v, %v", st, err)
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != stateFile {
		t.Errorf("directory holds %v", entries)
	}
}

func TestWriteFileAtomicFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// The target is a non-empty directory: the rename fails.
	target := filepath.Join(dir, "x")
	if err := os.MkdirAll(filepath.Join(target, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(target, []byte("data"), 0o644); err == nil {
		t.Fatal("rename over a directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary file left: %v", entries)
	}
}

func TestProcessAlive(t *testing.T) {
	start, err := procStartTime(os.Getpid())
	if err != nil || start == 0 {
		t.Fatalf("procStartTime(self) = %d, %v", start, err)
	}
	if !processAlive(os.Getpid(), start) {
		t.Error("this process is not alive")
	}
	// Same PID, another start time: a recycled PID.
	if processAlive(os.Getpid(), start+1) {
		t.Error("a recycled PID counts as alive")
	}
	if processAlive(0, 0) || processAlive(-1, 0) {
		t.Error("PID 0 or -1 counts as alive")
	}

	// A zombie (exited, not reaped) is gone.
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	pid := cmd.Process.Pid
	cstart, err := procStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid, cstart) {
		if time.Now().After(deadline) {
			t.Fatal("an exited child still counts as alive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Wait()
}

func TestProcStatCommWithParens(t *testing.T) {
	// The command name may hold ") " itself: fields count from the last ')'.
	dir := t.TempDir()
	exe := filepath.Join(dir, "a) b (c")
	if err := os.Symlink("/bin/sh", exe); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-c", "read x")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	state, start, err := procStat(cmd.Process.Pid)
	if err != nil || start == 0 || state == 0 {
		t.Fatalf("procStat = %c %d %v", state, start, err)
	}
	if !processAlive(cmd.Process.Pid, start) {
		t.Error("child with a strange name is not alive")
	}
}
