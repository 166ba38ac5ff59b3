package runtime

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// outputCopier copies the container's stdout and stderr into its log, both
// in one loop over one epoll set. Two pipes lose the order between the
// streams; one reader that takes the pipes in the order epoll reports them
// ready (the order their first unread byte arrived) keeps it for output
// written further apart than the monitor takes to read, as
// `echo out; echo err >&2` is. (A goroutine per pipe on Go's poller does
// not: it wakes the readers of one batch in reverse order.)
type outputCopier struct {
	w       *logWriter
	epfd    int
	abortFD int    // an eventfd: abort ends run
	fds     [2]int // the read ends, -1 once at their end
	lines   [2]*lineSplitter
}

// newOutputCopier makes the pipes of the process's stdout and stderr and
// returns their write ends, blocking as a program expects its stdout.
func newOutputCopier(w *logWriter) (c *outputCopier, stdout, stderr *os.File, err error) {
	c = &outputCopier{w: w, epfd: -1, abortFD: -1, fds: [2]int{-1, -1},
		lines: [2]*lineSplitter{newLineSplitter(Stdout), newLineSplitter(Stderr)}}
	var writers [2]*os.File
	defer func() {
		if err != nil {
			c.close()
			for _, f := range writers {
				if f != nil {
					f.Close()
				}
			}
		}
	}()
	for i := range 2 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
			return nil, nil, nil, fmt.Errorf("output pipe: %w", err)
		}
		c.fds[i] = p[0]
		writers[i] = os.NewFile(uintptr(p[1]), c.lines[i].stream)
		if err := unix.SetNonblock(p[1], false); err != nil {
			return nil, nil, nil, fmt.Errorf("output pipe: %w", err)
		}
	}
	if c.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, nil, nil, fmt.Errorf("epoll: %w", err)
	}
	if c.abortFD, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, nil, nil, fmt.Errorf("eventfd: %w", err)
	}
	for _, fd := range []int{c.fds[0], c.fds[1], c.abortFD} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(c.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return nil, nil, nil, fmt.Errorf("epoll: %w", err)
		}
	}
	return c, writers[0], writers[1], nil
}

// run copies until both pipes reach their end (every writer closed them)
// or abort is called.
func (c *outputCopier) run() error {
	var events [3]unix.EpollEvent
	for c.fds[0] >= 0 || c.fds[1] >= 0 {
		n, err := unix.EpollWait(c.epfd, events[:], -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == c.abortFD {
				for _, ls := range c.lines {
					ls.end(c.w)
				}
				return nil
			}
			for i, fd := range c.fds {
				if fd >= 0 && int(ev.Fd) == fd {
					if err := c.read(i); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// read takes what pipe i holds, up to a few buffers: a stream that never
// pauses must not starve the other, which epoll reports next.
func (c *outputCopier) read(i int) error {
	ls := c.lines[i]
	for range 4 {
		n, err := unix.Read(c.fds[i], ls.space())
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return nil
		case err != nil:
			return fmt.Errorf("read %s: %w", ls.stream, err)
		case n == 0:
			ls.end(c.w)
			unix.EpollCtl(c.epfd, unix.EPOLL_CTL_DEL, c.fds[i], nil)
			unix.Close(c.fds[i])
			c.fds[i] = -1
			return nil
		}
		ls.wrote(c.w, n)
	}
	return nil
}

// abort makes run return without waiting for the pipes' end.
func (c *outputCopier) abort() {
	one := [8]byte{1}
	unix.Write(c.abortFD, one[:])
}

// close releases the descriptors; run must have returned.
func (c *outputCopier) close() {
	for i, fd := range c.fds {
		if fd >= 0 {
			unix.Close(fd)
			c.fds[i] = -1
		}
	}
	for _, fd := range []*int{&c.epfd, &c.abortFD} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}
