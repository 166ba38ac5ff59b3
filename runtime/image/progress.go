package image

import (
	"io"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LayerState is where one layer is in a pull or a push.
type LayerState int

const (
	// LayerWaiting: queued behind the limit of parallel transfers.
	LayerWaiting LayerState = iota
	// LayerDownloading: Current of Total bytes have arrived.
	LayerDownloading
	// LayerVerifying: all bytes arrived; the digest is being compared.
	LayerVerifying
	// LayerDownloaded: the blob is verified and stored.
	LayerDownloaded
	// LayerExtracting: the blob is being unpacked.
	LayerExtracting
	// LayerDone: the layer is pulled (downloaded, unpacked or both).
	LayerDone
	// LayerExists: the store (pull) or the registry (push) had the layer:
	// nothing was transferred.
	LayerExists
	// LayerPushing: Current of Total bytes have been sent.
	LayerPushing
	// LayerPushed: the registry has the blob.
	LayerPushed
)

// String is docker's word for the state, as `docker pull` and `docker push`
// print it.
func (s LayerState) String() string {
	switch s {
	case LayerWaiting:
		return "Waiting"
	case LayerDownloading:
		return "Downloading"
	case LayerVerifying:
		return "Verifying Checksum"
	case LayerDownloaded:
		return "Download complete"
	case LayerExtracting:
		return "Extracting"
	case LayerDone:
		return "Pull complete"
	case LayerExists:
		return "Already exists"
	case LayerPushing:
		return "Pushing"
	case LayerPushed:
		return "Pushed"
	}
	return "?"
}

// LayerEvent is one step of one layer of a pull or a push, for a progress
// display. A terminal front end draws a bar per Layer from Current and
// Total; a plain one prints String() when a layer's State changes (docker's
// non-terminal output), ignoring the repeated Downloading and Pushing events.
type LayerEvent struct {
	// Layer is the layer's blob digest, as the manifest names it.
	Layer v1.Hash
	State LayerState
	// Current is the bytes transferred so far (Downloading, Pushing);
	// Total the blob's size, from the manifest.
	Current, Total int64
}

// ShortID is the first 12 hex digits of the layer's digest, as docker shows
// a layer.
func (e LayerEvent) ShortID() string {
	if len(e.Layer.Hex) < 12 {
		return e.Layer.Hex
	}
	return e.Layer.Hex[:12]
}

// String is the event as docker's plain output prints it:
// "a1b2c3d4e5f6: Pull complete".
func (e LayerEvent) String() string {
	return e.ShortID() + ": " + e.State.String()
}

// reporter serialises the calls of a progress callback, so that the caller
// needs no lock of its own.
type reporter struct {
	mu sync.Mutex
	fn func(LayerEvent)
}

func (r *reporter) send(ev LayerEvent) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fn(ev)
}

// progressEvery bounds how often Downloading and Pushing events are sent
// for one layer.
const progressEvery = 100 * time.Millisecond

// progressReader sends its LayerEvent as bytes go through it, at most every
// progressEvery, and once more at the end.
type progressReader struct {
	r    io.Reader
	rep  *reporter
	ev   LayerEvent
	last time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.ev.Current += int64(n)
	if now := time.Now(); err != nil || now.Sub(p.last) >= progressEvery {
		p.last = now
		p.rep.send(p.ev)
	}
	return n, err
}
