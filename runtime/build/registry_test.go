package build

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/berth-dev/berth/runtime/image"
)

// FROM an image the store lacks pulls it from its registry (here one on
// loopback); the built image pushes and pulls back as any other.
func TestFromRegistryAndPush(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	pusher := newEnv(t)
	if err := pusher.store.Tag("busybox", host+"/base/bb:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := pusher.store.Push(ctx, host+"/base/bb:1", image.PushOptions{}); err != nil {
		t.Fatal(err)
	}

	e := newEnv(t)
	dir := newContext(t, "FROM "+host+"/base/bb:1\nRUN echo built > /built\nCMD [\"cat\", \"/built\"]\n", nil)
	var out bytes.Buffer
	img, err := Build(ctx, e.store, e.rt, Options{ContextDir: dir, Output: &out, Tags: []string{host + "/app:1"}})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "pulling "+host+"/base/bb:1") {
		t.Errorf("output:\n%s", out.String())
	}
	if _, err := e.store.Push(ctx, host+"/app:1", image.PushOptions{}); err != nil {
		t.Fatal(err)
	}

	puller := newEnv(t)
	pulled, err := puller.store.Pull(ctx, host+"/app:1", image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pulled.ID != img.ID {
		t.Errorf("pulled %s, built %s", pulled.ID, img.ID)
	}
	if got, code := puller.runImage(t, pulled); got != "built\n" || code != 0 {
		t.Errorf("the pulled image ran %q, exit %d", got, code)
	}
}
