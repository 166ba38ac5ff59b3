package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// distributionBinary is the CNCF distribution registry as Debian's
// docker-registry package installs it.
const distributionBinary = "/usr/bin/docker-registry"

// The distribution server's htpasswd wants bcrypt: this is the line
// `htpasswd -B` writes for berth:berth-Pa55 (made with libxcrypt's crypt(3)).
const (
	distUser     = "berth"
	distPassword = "berth-Pa55"
	distHtpasswd = "berth:$2b$05$berthtestsaltberthteseDkud8LVsnct5pf97QrTB4oX8mBzgFeO\n"
)

// startDistribution runs the distribution server on a loopback port, with
// htpasswd authentication and its storage in a temporary folder, and
// returns its host:port.
func startDistribution(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(distributionBinary); err != nil {
		t.Skip(distributionBinary + " is missing: apt-get install docker-registry")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(distHtpasswd), 0o600); err != nil {
		t.Fatal(err)
	}
	// The port is free when chosen; should another process take it before
	// the server does, the server exits and another port is tried.
	var lastLog string
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: berth-test
auth:
  htpasswd:
    realm: berth-test
    path: %s
`, filepath.Join(dir, "storage"), addr, filepath.Join(dir, "htpasswd"))
		cfg := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd := exec.Command(distributionBinary, "serve", cfg)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			close(exited)
		}()
		if waitRegistry(addr, exited) {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			return addr
		}
		cmd.Process.Kill()
		<-exited
		lastLog = out.String()
	}
	t.Fatalf("the distribution server did not start: %s", lastLog)
	return ""
}

// waitRegistry polls GET /v2/ until the registry answers (401: it wants
// credentials), it exits, or ten seconds pass.
func waitRegistry(addr string, exited <-chan struct{}) bool {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if resp, err := client.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return true
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

func TestDistributionRegistry(t *testing.T) {
	host := startDistribution(t)
	dockerConfig(t, host, distUser, distPassword)
	ref := func(repo string) string { return host + "/" + repo }

	// Push then pull, with htpasswd credentials from DOCKER_CONFIG.
	src := newStore(t)
	orig := load(t, src, dockerSave(t, ggcrImage(t, runtime.GOARCH, []string{"/app/run"},
		layerTar(t, "etc/base", "base\n"), layerTar(t, "app/run", "run\n")), "app:1"))[0]
	plain := importBytes(t, src, layerTar(t, "etc/plain", "plain\n"), "plain:1")
	for local, remoteRef := range map[string]string{"app:1": ref("berth/app:1"), "plain:1": ref("berth/plain:1")} {
		if err := src.Tag(local, remoteRef); err != nil {
			t.Fatal(err)
		}
	}
	pushed, err := src.Push(context.Background(), ref("berth/app:1"), PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Push(context.Background(), ref("berth/plain:1"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := newStore(t)
	got := pull(t, dst, ref("berth/app:1"), PullOptions{})
	sameImage(t, got, orig)
	dirs, err := dst.LayerDirs(got)
	if err != nil {
		t.Fatal(err)
	}
	if readLayerFile(t, dirs[1], "app/run") != "run\n" {
		t.Error("app/run differs")
	}
	sameImage(t, pull(t, dst, ref("berth/plain:1"), PullOptions{}), plain)

	// Digest pinning.
	pinned := pull(t, newStore(t), ref("berth/app@"+pushed.Digest.String()), PullOptions{})
	if pinned.ID != orig.ID {
		t.Errorf("pull by digest: %s", pinned.ID)
	}

	// A multi-platform index.
	arches := []string{"s390x", runtime.GOARCH}
	var adds []mutate.IndexAddendum
	want := map[string]v1.Image{}
	for _, arch := range arches {
		img := ggcrImage(t, arch, []string{arch}, layerTar(t, "etc/arch", arch))
		want[arch] = img
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idxRef, err := name.ParseReference(ref("berth/multi:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(idxRef, mutate.AppendManifests(empty.Index, adds...),
		remote.WithAuth(&authn.Basic{Username: distUser, Password: distPassword})); err != nil {
		t.Fatal(err)
	}
	multi := pull(t, newStore(t), ref("berth/multi:1"), PullOptions{})
	if multi.ID != configDigest(t, want[runtime.GOARCH]).String() || !slices.Equal(multi.Config.Cmd, []string{runtime.GOARCH}) {
		t.Errorf("pulled %v from the index", multi.Config.Cmd)
	}

	// Not found, and wrong credentials.
	if _, err := newStore(t).Pull(context.Background(), ref("berth/nope:1"), PullOptions{}); !errors.Is(err, ErrNotInRegistry) {
		t.Errorf("pull of a missing image: %v", err)
	}
	dockerConfig(t, host, distUser, "not-the-Pa55")
	_, err = newStore(t).Pull(context.Background(), ref("berth/app:1"), PullOptions{})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong password: %v", err)
	}
	if msg := err.Error(); strings.Contains(msg, "not-the-Pa55") || strings.Contains(msg, distPassword) || strings.Contains(msg, "\n") {
		t.Errorf("message %q", msg)
	}
}
