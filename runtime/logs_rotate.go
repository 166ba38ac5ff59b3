package runtime

// Rotation of a container's log, as docker's json-file and local drivers
// keep theirs (max-size, max-file, compress), in berth's own line format.
//
// The files of one log, newest first (N is max-file):
//
//	container.log            the current file, the monitor appends to it
//	container.log.1[.gz]     the last file rotated out
//	…
//	container.log.N-1[.gz]   the oldest kept
//
// A rotation happens in the writer, under its lock, between two lines:
//
//  1. drop container.log.N-1[.gz], shift each container.log.i[.gz] to i+1,
//     the oldest first;
//  2. link container.log as container.log.1: the file has both names;
//  3. create the next file as container.log.new and rename it over
//     container.log.
//
// container.log therefore always names a whole file, and a reader that
// holds an old file open reads it to its end: its data stays where it is
// whatever name it has, or none. Compression runs in a goroutine of the
// monitor, after the rotation, so the container's output goes on meanwhile:
// it writes container.log.gz.tmp, syncs it, renames it to
// container.log.K.gz and only then removes container.log.K. Readers look
// for the plain file first, then the .gz: both are whole at any time.
//
// A reader lists the files without a lock (the monitor never waits for a
// reader): it opens the current file first, then each rotated one, and
// lists again if the current file changed meanwhile. A file seen twice
// (shifted during the listing) is recognised by its identity, which the .gz
// carries in its header: the inode and the first bytes (the time of its
// first line) of the plain file it was made from.

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// The logging drivers berth implements (LogConfig.Driver).
const (
	LogDriverLocal    = "local"
	LogDriverJSONFile = "json-file"
	LogDriverNone     = "none"
)

// The limits of docker's local driver, berth's default.
const (
	defaultLogMaxSize = 20 << 20
	defaultLogMaxFile = 5
)

// forceRotateSlack is how far past max-size a file may grow to keep a long
// line (P chunks and their F) in one file; past it the file is rotated all
// the same, so that endless output without a newline stays bounded.
const forceRotateSlack = 64 * maxLogLine

var (
	// errLogDriver: the spec names a logging driver berth does not
	// implement.
	errLogDriver = errors.New("logging driver not supported (json-file, local or none)")
	// errNotRegular: a name of a log file is not a regular file.
	errNotRegular = errors.New("not a regular file")
)

// Readable reports whether the container's output is kept for `logs` to
// read: docker's none driver keeps nothing.
func (l LogConfig) Readable() bool { return l.Driver != LogDriverNone }

// logLimits is how a monitor keeps a container's log.
type logLimits struct {
	discard  bool  // keep nothing (none)
	maxSize  int64 // rotate before a line would take the file past it; 0: never
	maxFiles int   // files kept, the current one included (≥ 1)
	compress bool  // gzip the rotated files
}

// limits applies the driver's defaults: local's are 20 MiB, 5 files,
// compressed; json-file's no limit, 1 file, not compressed.
func (l LogConfig) limits() (logLimits, error) {
	var lim logLimits
	switch l.Driver {
	case LogDriverNone:
		return logLimits{discard: true, maxFiles: 1}, nil
	case LogDriverJSONFile:
		lim = logLimits{maxFiles: 1}
	case "", LogDriverLocal:
		lim = logLimits{maxSize: defaultLogMaxSize, maxFiles: defaultLogMaxFile, compress: true}
	default:
		return lim, fmt.Errorf("%w: %q", errLogDriver, l.Driver)
	}
	switch {
	case l.MaxSize > 0:
		lim.maxSize = l.MaxSize
	case l.MaxSize < 0:
		lim.maxSize = 0
	}
	if l.MaxFile > 0 {
		lim.maxFiles = l.MaxFile
	}
	if l.Compress != nil {
		lim.compress = *l.Compress
	}
	if lim.maxFiles < 2 || lim.maxSize == 0 {
		lim.compress = false
	}
	return lim, nil
}

// rotatedName is the name of the i-th rotated file of the log at path.
func rotatedName(path string, i int, gz bool) string {
	name := path + "." + strconv.Itoa(i)
	if gz {
		name += ".gz"
	}
	return name
}

// openLog opens the log of the container in dir for its monitor, with the
// limits of cfg, and tidies what a monitor killed during a compression
// left.
func openLog(dir string, cfg LogConfig) (*logWriter, error) {
	lim, err := cfg.limits()
	if err != nil {
		return nil, err
	}
	if lim.discard {
		return &logWriter{discard: true}, nil
	}
	path := filepath.Join(dir, logFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	w := &logWriter{f: f, path: path, lim: lim, size: fi.Size()}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.recover()
	return w, nil
}

// recover removes the temporary files of an interrupted compression or
// rotation, the plain copy of a file already compressed, and queues the
// rotated files left plain for compression. w.mu is held.
func (w *logWriter) recover() {
	os.Remove(w.path + ".gz.tmp")
	os.Remove(w.path + ".new")
	for i := 1; i < w.lim.maxFiles; i++ {
		plain := rotatedName(w.path, i, false)
		if _, err := os.Lstat(rotatedName(w.path, i, true)); err == nil {
			w.kept = i
		}
		if _, err := os.Lstat(plain); err != nil {
			continue
		}
		w.kept = i
		if _, err := os.Lstat(rotatedName(w.path, i, true)); err == nil {
			// The .gz is whole (renamed into place after a sync): the
			// compression only missed its last step.
			os.Remove(plain)
			continue
		}
		if w.lim.compress {
			w.queueCompression(w.rotations + 1 - int64(i))
		}
	}
}

// rotateDue reports whether the next line, of n bytes, goes to a new file.
// w.mu is held.
func (w *logWriter) rotateDue(n int) bool {
	if w.lim.maxSize <= 0 || w.size == 0 || w.size+int64(n) <= w.lim.maxSize || w.size < w.retryAt {
		return false
	}
	// Keep a long line's chunks together, unless it runs on and on.
	return !(w.inPartial[0] || w.inPartial[1]) || w.size >= w.lim.maxSize+forceRotateSlack
}

// rotate moves the current file out of the way and opens a new one. On
// failure the writer keeps writing to the file it has. w.mu is held.
func (w *logWriter) rotate() (err error) {
	// The next file first: when it cannot be made, nothing is moved.
	newPath := w.path + ".new"
	os.Remove(newPath)
	f, err := os.OpenFile(newPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return fmt.Errorf("create the next log file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(newPath)
		}
	}()
	n := w.lim.maxFiles
	if n >= 2 {
		if w.kept >= n-1 {
			for _, gz := range []bool{false, true} {
				if err := os.Remove(rotatedName(w.path, n-1, gz)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("remove the oldest log file: %w", err)
				}
			}
		}
		// From here on the rotated files have moved up one place, whatever
		// fails next: the compressor finds them by this count.
		w.rotations++
		last := min(w.kept, n-2)
		w.kept = min(w.kept+1, n-1)
		for i := last; i >= 1; i-- {
			for _, gz := range []bool{false, true} {
				if err := os.Rename(rotatedName(w.path, i, gz), rotatedName(w.path, i+1, gz)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					// Look for them all from now on.
					w.kept = n - 1
					return fmt.Errorf("shift the rotated log files: %w", err)
				}
			}
		}
		if err := os.Link(w.path, rotatedName(w.path, 1, false)); err != nil {
			return fmt.Errorf("link the log file: %w", err)
		}
	}
	if err := os.Rename(newPath, w.path); err != nil {
		if n >= 2 {
			// The file stays current: it must not be rotated too.
			os.Remove(rotatedName(w.path, 1, false))
		}
		return fmt.Errorf("replace the log file: %w", err)
	}
	w.f.Close()
	w.f, w.size, w.retryAt = f, 0, 0
	if w.lim.compress {
		w.queueCompression(w.rotations)
	}
	return nil
}

// queueCompression queues the file of rotation r (now container.log.1 for
// the last one) for the compressor, which it starts if idle. w.mu is held.
func (w *logWriter) queueCompression(r int64) {
	w.pending = append(w.pending, r)
	if !w.compressing {
		w.compressing = true
		w.compressors.Add(1)
		go w.compressLoop()
	}
}

// rotatedIndex is where the file of rotation r is now: container.log.K,
// or K ≥ maxFiles when it has been dropped. w.mu is held.
func (w *logWriter) rotatedIndex(r int64) int64 { return w.rotations - r + 1 }

// compressLoop compresses the queued files, oldest rotation first, until
// the queue is empty. Files dropped before their turn are skipped.
func (w *logWriter) compressLoop() {
	defer w.compressors.Done()
	for {
		w.mu.Lock()
		var src *os.File
		var r int64
		for src == nil && len(w.pending) > 0 {
			r, w.pending = w.pending[0], w.pending[1:]
			if w.rotatedIndex(r) >= int64(w.lim.maxFiles) {
				continue
			}
			f, err := os.Open(rotatedName(w.path, int(w.rotatedIndex(r)), false))
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					fmt.Fprintf(os.Stderr, "berth monitor: compress log: %v\n", err)
				}
				continue
			}
			src = f
		}
		if src == nil {
			w.pending = nil
			w.compressing = false
			w.mu.Unlock()
			// The compressor's tables are garbage now: give their pages
			// back, the monitor lives long.
			debug.FreeOSMemory()
			return
		}
		w.mu.Unlock()
		id, err := compressLogFile(src, w.path+".gz.tmp")
		src.Close()
		w.mu.Lock()
		if err == nil {
			err = w.installCompressed(r, id)
		}
		w.mu.Unlock()
		if err != nil {
			os.Remove(w.path + ".gz.tmp")
			fmt.Fprintf(os.Stderr, "berth monitor: compress log: %v\n", err)
		}
	}
}

// installCompressed puts the compressed copy (of the file id) of the file
// of rotation r in its place, wherever rotations have moved that file
// meanwhile. w.mu is held.
func (w *logWriter) installCompressed(r int64, id segmentID) error {
	k := w.rotatedIndex(r)
	if k >= int64(w.lim.maxFiles) {
		// Dropped while it was being compressed.
		return os.Remove(w.path + ".gz.tmp")
	}
	plain, err := os.Open(rotatedName(w.path, int(k), false))
	if err != nil {
		return err
	}
	fi, err := plain.Stat()
	var there segmentID
	if err == nil {
		there, err = fileIdentity(plain, fi)
	}
	plain.Close()
	if err != nil {
		return err
	}
	if there != id {
		// A rotation that failed half-way moved the files otherwise
		// than counted: leave this one plain.
		return fmt.Errorf("%s is not the file compressed", rotatedName(w.path, int(k), false))
	}
	if err := os.Rename(w.path+".gz.tmp", rotatedName(w.path, int(k), true)); err != nil {
		return err
	}
	if err := os.Remove(rotatedName(w.path, int(k), false)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// compressLogFile writes src, gzipped, to tmp, and syncs it: once renamed,
// the .gz is whole even after a crash. Its header carries src's identity,
// which it returns, and its time is src's, for readers.
func compressLogFile(src *os.File, tmp string) (id segmentID, err error) {
	fi, err := src.Stat()
	if err != nil {
		return id, err
	}
	if id, err = fileIdentity(src, fi); err != nil {
		return id, err
	}
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return id, err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	// The default level, as docker's: in Go it also takes the least
	// memory (some 800 KiB, BestSpeed's tables 1.2 MiB), given back once
	// the queue is done.
	zw := gzip.NewWriter(out)
	zw.Header.ModTime = fi.ModTime()
	zw.Header.Extra = id.gzipExtra()
	if _, err := io.Copy(zw, src); err != nil {
		return id, err
	}
	if err := zw.Close(); err != nil {
		return id, err
	}
	if err := out.Sync(); err != nil {
		return id, err
	}
	// A reader skips a rotated file older than --since by its time.
	return id, os.Chtimes(tmp, time.Time{}, fi.ModTime())
}

// segmentID tells the files of a log apart across renames and compression:
// the inode of the plain file and the first bytes of its text (an inode
// number is reused once a compressed file's plain copy is gone, the time of
// a first line is not).
type segmentID struct {
	ino   uint64
	n     uint8
	first [32]byte
}

// fileIdentity is the identity of the plain log file f.
func fileIdentity(f *os.File, fi os.FileInfo) (segmentID, error) {
	var id segmentID
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
	}
	n, err := f.ReadAt(id.first[:], 0)
	if err != nil && err != io.EOF {
		return id, err
	}
	id.n = uint8(n)
	return id, nil
}

// gzipSubfield is the ID of berth's subfield in a gzip header's extra field
// (RFC 1952 2.3.1.1).
var gzipSubfield = [2]byte{'B', 'I'}

func (id segmentID) gzipExtra() []byte {
	b := make([]byte, 0, 4+8+len(id.first))
	b = append(b, gzipSubfield[0], gzipSubfield[1])
	b = binary.LittleEndian.AppendUint16(b, uint16(8+id.n))
	b = binary.LittleEndian.AppendUint64(b, id.ino)
	return append(b, id.first[:id.n]...)
}

// gzipIdentity reads the identity in the header of the gzip file f; ok is
// false when it has none (a file berth did not write).
func gzipIdentity(f *os.File) (id segmentID, ok bool) {
	var hdr [12 + 4 + 8 + 32]byte
	n, _ := f.ReadAt(hdr[:], 0)
	h := hdr[:n]
	const fextra = 1 << 2
	if len(h) < 12 || h[0] != 0x1f || h[1] != 0x8b || h[3]&fextra == 0 {
		return id, false
	}
	xlen := int(binary.LittleEndian.Uint16(h[10:12]))
	extra := h[12:]
	if xlen < len(extra) {
		extra = extra[:xlen]
	}
	for len(extra) >= 4 {
		size := int(binary.LittleEndian.Uint16(extra[2:4]))
		if 4+size > len(extra) {
			return id, false
		}
		data := extra[4 : 4+size]
		if extra[0] == gzipSubfield[0] && extra[1] == gzipSubfield[1] && size >= 8 && size-8 <= len(id.first) {
			id.ino = binary.LittleEndian.Uint64(data)
			id.n = uint8(copy(id.first[:], data[8:]))
			return id, true
		}
		extra = extra[4+size:]
	}
	return id, false
}

// logSegment is one open file of a log: a rotated one, plain or gzipped, or
// the current one.
type logSegment struct {
	f     *os.File
	gz    bool
	id    segmentID
	known bool // id is known (a gzip file berth did not write has none)
	size  int64
	mtime time.Time
}

// openSegment opens one file of a log. Symbolic links are not followed:
// the files of a log are only ever the monitor's.
func openSegment(name string, gz bool) (*logSegment, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: %w", name, errNotRegular)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &logSegment{f: f, gz: gz, size: fi.Size(), mtime: fi.ModTime(), known: true}
	if gz {
		s.id, s.known = gzipIdentity(f)
	} else if s.id, err = fileIdentity(f, fi); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (s *logSegment) close() {
	if s != nil && s.f != nil {
		s.f.Close()
	}
}

func closeSegments(segs []*logSegment) {
	for _, s := range segs {
		s.close()
	}
}

// sameSegment reports whether a and b are known to be the same file's
// text.
func sameSegment(a, b *logSegment) bool {
	return a.known && b.known && a.id == b.id
}

// openLogSegments opens the files of the log at path, oldest first, the
// current one last. It does not fail for a missing rotated file: the
// monitor may be rotating; it lists again when the current file changed
// while it listed, so that what it returns is a sequence the log held.
func openLogSegments(path string, maxFiles int) ([]*logSegment, error) {
	for attempt := 0; ; attempt++ {
		segs, stable, err := listLogSegments(path, maxFiles)
		if err != nil || stable || attempt == 4 {
			return segs, err
		}
		closeSegments(segs)
	}
}

func listLogSegments(path string, maxFiles int) (segs []*logSegment, stable bool, err error) {
	cur, err := openSegment(path, false)
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if err != nil {
			cur.close()
			closeSegments(segs)
			segs = nil
		}
	}()
	// Rotated files are looked for up to max-file, and past it while they
	// are there (a spec written with other limits).
	for i := 1; ; i++ {
		s, err := openSegment(rotatedName(path, i, false), false)
		if errors.Is(err, fs.ErrNotExist) {
			// Compressed and removed since it was listed: the .gz is in
			// place before the plain file goes.
			s, err = openSegment(rotatedName(path, i, true), true)
		}
		if errors.Is(err, fs.ErrNotExist) {
			if i >= maxFiles-1 {
				break
			}
			continue
		}
		if errors.Is(err, errNotRegular) || errors.Is(err, syscall.ELOOP) {
			continue // not the monitor's
		}
		if err != nil {
			return segs, false, err
		}
		dup := sameSegment(s, cur)
		for _, o := range segs {
			dup = dup || sameSegment(s, o)
		}
		if dup {
			// Shifted while listed: seen at its former place already.
			s.close()
			continue
		}
		segs = append(segs, s)
	}
	slices.Reverse(segs)
	segs = append(segs, cur)
	fi, err := os.Stat(path)
	if err == nil {
		var curFI os.FileInfo
		if curFI, err = cur.f.Stat(); err != nil {
			return segs, false, err
		}
		stable = os.SameFile(fi, curFI)
	}
	if !stable {
		// Rotations went on while it listed: files were seen at the
		// places they had at different times, and files newer than cur
		// may have been seen. Every file between the oldest and the
		// newest seen was seen all the same (all move up one place at a
		// time, and the listing goes up too): their order is that of
		// their first lines.
		slices.SortStableFunc(segs, func(a, b *logSegment) int { return compareFirstLines(a, b) })
	}
	return segs, stable, nil
}

// compareFirstLines orders two files of a log by the time of their first
// line; a file without one (empty, or not berth's) goes last.
func compareFirstLines(a, b *logSegment) int {
	ka, kb := a.id.first[:a.id.n], b.id.first[:b.id.n]
	switch {
	case !a.known || len(ka) == 0:
		if !b.known || len(kb) == 0 {
			return 0
		}
		return 1
	case !b.known || len(kb) == 0:
		return -1
	}
	return bytes.Compare(ka, kb)
}
