package runtime

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// stdio gives an exec'd process its stdin, stdout and stderr. A file the
// caller holds reaches the container only when it is an anonymous pipe,
// which has no name on the host and nothing to chmod, truncate or seek:
// the caller's terminal, a file it redirected to, a socket or a named FIFO
// would otherwise be the container's to read, truncate or chmod
// (/proc/self/fd/1 inside). Anything else is relayed through a pipe of
// berth's, as docker gives an exec'd process pipes.
type stdio struct {
	child [3]*os.File // what the helper and the command get (nil: /dev/null)
	// ours are the child's ends of the pipes berth made: closed once the
	// helper holds them, so that an output pipe reads EOF when the command
	// and what it started are gone.
	ours []*os.File
	// in is the write end of a relayed stdin, closed when the process ends.
	in      *os.File
	readers []*os.File
	copies  sync.WaitGroup
}

// relayDrain is how long Wait lets the relays copy what the process wrote
// after it exited: a background child of the command may hold an output
// pipe open forever.
const relayDrain = 2 * time.Second

func newStdio(stdin, stdout, stderr *os.File) (_ *stdio, err error) {
	s := &stdio{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if stdin != nil {
		if anonymousPipe(stdin) {
			s.child[0] = stdin
		} else {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, fmt.Errorf("stdin pipe: %w", err)
			}
			s.child[0], s.in = r, w
			s.ours = append(s.ours, r)
			// Not waited for: a read of a terminal only ends with a key.
			go func() {
				io.Copy(w, stdin)
				w.Close()
			}()
		}
	}
	for i, out := range []*os.File{stdout, stderr} {
		if out == nil {
			continue
		}
		if anonymousPipe(out) {
			s.child[i+1] = out
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("output pipe: %w", err)
		}
		s.child[i+1] = w
		s.ours = append(s.ours, w)
		s.readers = append(s.readers, r)
		s.copies.Add(1)
		go func() {
			defer s.copies.Done()
			io.Copy(out, r)
		}()
	}
	return s, nil
}

// files are the helper's stdin, stdout and stderr, as exec.Cmd takes them.
func (s *stdio) files() (io.Reader, io.Writer, io.Writer) {
	var in io.Reader
	var out, errw io.Writer
	// A nil *os.File in an interface is not nil: exec.Cmd must see nil.
	if s.child[0] != nil {
		in = s.child[0]
	}
	if s.child[1] != nil {
		out = s.child[1]
	}
	if s.child[2] != nil {
		errw = s.child[2]
	}
	return in, out, errw
}

// started drops berth's copies of the child's ends once the helper holds
// its own.
func (s *stdio) started() {
	for _, f := range s.ours {
		f.Close()
	}
	s.ours = nil
}

// close ends the relays after the process exited: stdin stops, and the
// outputs are copied to their end, or for relayDrain at most.
func (s *stdio) close() {
	if s == nil {
		return
	}
	s.started()
	if s.in != nil {
		s.in.Close()
	}
	done := make(chan struct{})
	go func() { s.copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(relayDrain):
	}
	for _, r := range s.readers {
		r.Close()
	}
	s.readers = nil
}

// anonymousPipe reports whether f is a pipe with no name on any
// filesystem (pipe(2)), which is all a container may be handed.
func anonymousPipe(f *os.File) bool {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return false
	}
	var fs unix.Statfs_t
	return unix.Fstatfs(int(f.Fd()), &fs) == nil && fs.Type == unix.PIPEFS_MAGIC
}
