package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// benchImage is the image of the pull and unpack benchmarks: 5 layers of
// 10 MB of tar each (50 MB unpacked), files of 4 KB to 1 MB in folders of
// 20, of a content that gzip compresses to about half, as a registry
// serves them (gzip). It returns the image, the gzip blobs and the sizes of
// the layers' tars and blobs.
func benchImage(b *testing.B) (img v1.Image, blobs [][]byte, tarSize, blobSize int64) {
	b.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{'b', 'e', 'r', 't', 'h'}))
	const alphabet = "etaoinshrdlucmfw"
	img = empty.Image
	for l := range 5 {
		var entries []entry
		var size int64
		for i := 0; size < 10<<20; i++ {
			d := "layer" + strconv.Itoa(l) + "/d" + strconv.Itoa(i/20) + "/"
			if i%20 == 0 {
				entries = append(entries, dir(d))
			}
			n := 4096 << rng.IntN(9) // 4 KB … 1 MB
			body := make([]byte, n)
			for j := range body {
				body[j] = alphabet[rng.IntN(len(alphabet))]
			}
			entries = append(entries, file(d+"f"+strconv.Itoa(i), string(body)))
			size += int64(n)
		}
		tarData := makeTar(b, entries...)
		var gz bytes.Buffer
		zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
		if err != nil {
			b.Fatal(err)
		}
		zw.Write(tarData)
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		blob := gz.Bytes()
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(blob)), nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			b.Fatal(err)
		}
		blobs = append(blobs, blob)
		tarSize += int64(len(tarData))
		blobSize += int64(len(blob))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		b.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		b.Fatal(err)
	}
	return img, blobs, tarSize, blobSize
}

// BenchmarkPullCold pulls benchImage from a loopback registry into an
// empty store: download, verify, unpack, commit. MB/s is of the bytes
// downloaded.
func BenchmarkPullCold(b *testing.B) {
	reg := newTestRegistry(b)
	img, _, _, blobSize := benchImage(b)
	reg.push(b, "bench:1", img)
	dir := b.TempDir()
	b.SetBytes(blobSize)
	n := 0
	for b.Loop() {
		b.StopTimer()
		s, err := Open(filepath.Join(dir, strconv.Itoa(n)))
		if err != nil {
			b.Fatal(err)
		}
		n++
		b.StartTimer()
		if _, err := s.Pull(context.Background(), reg.ref("bench:1"), PullOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.RemoveAll(s.Dir()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms")
}

// BenchmarkPullWarm pulls benchImage again into a store that has it: the
// manifest is fetched, nothing else.
func BenchmarkPullWarm(b *testing.B) {
	reg := newTestRegistry(b)
	img, _, _, _ := benchImage(b)
	reg.push(b, "bench:1", img)
	s := newStore(b)
	pull(b, s, reg.ref("bench:1"), PullOptions{})
	reg.resetCounts()
	for b.Loop() {
		if _, err := s.Pull(context.Background(), reg.ref("bench:1"), PullOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if reg.allBlobGets() != 0 {
		b.Fatalf("a warm pull downloaded %d blobs", reg.allBlobGets())
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms")
}

// benchBlobs writes the layers of benchImage to files.
func benchBlobs(b *testing.B) (paths []string, tarSize int64) {
	b.Helper()
	_, blobs, tarSize, _ := benchImage(b)
	dir := b.TempDir()
	for i, blob := range blobs {
		p := filepath.Join(dir, "blob-"+strconv.Itoa(i))
		if err := os.WriteFile(p, blob, 0o600); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths, tarSize
}

// BenchmarkUnpack unpacks the 5 gzip layers of benchImage as a pull does
// (decompress, hash the diff ID, write the files through os.Root). MB/s is
// of the unpacked tar bytes; compare with BenchmarkUnpackTar.
func BenchmarkUnpack(b *testing.B) {
	blobs, tarSize := benchBlobs(b)
	work := b.TempDir()
	b.SetBytes(tarSize)
	n := 0
	for b.Loop() {
		for _, blob := range blobs {
			dst := filepath.Join(work, "layer-"+strconv.Itoa(n))
			n++
			if _, err := unpackBlob(context.Background(), blob, dst, v1.Hash{}, v1.Hash{}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		removeAll(b, work)
		b.StartTimer()
	}
}

// BenchmarkUnpackTar is GNU tar -xzf of the same layers, for comparison.
func BenchmarkUnpackTar(b *testing.B) {
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		b.Skip("no tar")
	}
	blobs, tarSize := benchBlobs(b)
	work := b.TempDir()
	b.SetBytes(tarSize)
	n := 0
	for b.Loop() {
		for _, blob := range blobs {
			dst := filepath.Join(work, "layer-"+strconv.Itoa(n))
			n++
			if err := os.Mkdir(dst, 0o755); err != nil {
				b.Fatal(err)
			}
			if out, err := exec.Command(tarBin, "-xzf", blob, "-C", dst).CombinedOutput(); err != nil {
				b.Fatalf("tar: %v: %s", err, out)
			}
		}
		b.StopTimer()
		removeAll(b, work)
		b.StartTimer()
	}
}

// removeAll empties dir.
func removeAll(b *testing.B, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			b.Fatal(err)
		}
	}
}
