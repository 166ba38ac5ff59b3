package runtime

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzReadLogs reads a log of three files (the current one, a rotated one,
// a compressed one) of arbitrary content, as `logs` with and without
// --tail, --since and --follow would: no panic, no hang, no file written
// or changed anywhere under the root, never more lines than the tail asks
// for, and, for logs of whole lines, the tail is the end of the whole.
// Seeds are in testdata/fuzz/FuzzReadLogs.
func FuzzReadLogs(f *testing.F) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var cur, rot, old []byte
	for i := range 5 {
		old = appendLogLine(old, t0.Add(time.Duration(i)*time.Second), Stdout, false, fmt.Appendf(nil, "old %d", i))
		rot = appendLogLine(rot, t0.Add(time.Duration(10+i)*time.Second), Stderr, false, fmt.Appendf(nil, "rot %d", i))
		cur = appendLogLine(cur, t0.Add(time.Duration(20+i)*time.Second), Stdout, false, fmt.Appendf(nil, "cur %d", i))
	}
	f.Add(cur, rot, old, false, int16(-1), int64(0))
	f.Add(cur, rot, old, false, int16(7), t0.Add(12*time.Second).UnixNano())
	f.Add(cur, rot, old, true, int16(3), int64(0))
	f.Fuzz(func(t *testing.T, current, rotated, compressed []byte, raw bool, tail int16, since int64) {
		root := t.TempDir()
		r, err := New(filepath.Join(root, "containers"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := r.Create(context.Background(), Spec{Name: "fuzz", Log: LogConfig{MaxFile: 4}})
		if err != nil {
			t.Fatal(err)
		}
		gz := compressed
		if !raw {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(compressed)
			zw.Close()
			gz = buf.Bytes()
		}
		for name, data := range map[string][]byte{logFile: current, logFile + ".1": rotated, logFile + ".2.gz": gz} {
			if err := os.WriteFile(filepath.Join(c.Dir, name), data, 0o640); err != nil {
				t.Fatal(err)
			}
		}
		before := treeOf(t, root)

		read := func(opts LogOptions) ([]string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var got []string
			err := r.ReadLogs(ctx, "fuzz", opts, func(e LogEntry) error {
				if e.Stream != Stdout && e.Stream != Stderr {
					t.Fatalf("stream %q", e.Stream)
				}
				got = append(got, e.Stream+" "+string(e.Text))
				return nil
			})
			if ctx.Err() != nil {
				t.Fatalf("ReadLogs %+v did not end", opts)
			}
			return got, err
		}
		opts := LogOptions{Tail: int(tail)}
		if since != 0 {
			opts.Since = time.Unix(0, since)
		}
		got, err := read(opts)
		if err == nil && opts.Tail >= 0 && len(got) > opts.Tail+2 {
			// At most the tail, and the two streams' unfinished lines.
			t.Errorf("tail %d: %d lines", opts.Tail, len(got))
		}
		// A created container's follow reads what there is and ends.
		opts.Follow = true
		if _, ferr := read(opts); (ferr == nil) != (err == nil) {
			t.Errorf("read: %v; follow: %v", err, ferr)
		}
		whole := func(b []byte) bool {
			if len(b) > 0 && b[len(b)-1] != '\n' {
				return false
			}
			for line := range bytes.Lines(b) {
				_, _, partial, _, err := parseLogLine(bytes.TrimSuffix(line, []byte("\n")))
				if err != nil || partial {
					return false
				}
			}
			return true
		}
		if tail >= 0 && since == 0 && !raw && whole(current) && whole(rotated) && whole(compressed) {
			all, err := read(LogOptions{Tail: -1})
			if err != nil {
				t.Fatal(err)
			}
			got, err := read(LogOptions{Tail: int(tail)})
			if err != nil {
				t.Fatal(err)
			}
			if want := all[max(0, len(all)-int(tail)):]; !slices.Equal(got, want) {
				t.Errorf("tail %d:\n got %q\nwant %q", tail, got, want)
			}
		}
		if after := treeOf(t, root); after != before {
			t.Errorf("the files under the root changed:\n%s\nthen\n%s", before, after)
		}
	})
}

// treeOf describes every file under root: name, mode, size and time.
func treeOf(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %d\n", path, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
