package image

import (
	"slices"
	"time"
)

// HistoryEntry is one step of the making of an image, as `docker history`
// shows it.
type HistoryEntry struct {
	// ID is the image's ID on its newest step and empty on the others
	// (docker's <missing>): the store keeps no image per step.
	ID        string
	Created   time.Time
	CreatedBy string
	Comment   string
	// EmptyLayer: the step changed only the config. Size is then 0, else
	// the unpacked size of the layer the step made.
	EmptyLayer bool
	Size       int64
}

// History returns the steps that made the image ref names, newest first,
// from its config's history: one per Dockerfile instruction of a built
// image. A layer that the history does not account for (an image whose
// config has no history) is a step of its own, with nothing else known.
func (s *Store) History(ref string) ([]HistoryEntry, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.resolve(ref)
	if err != nil {
		return nil, err
	}
	rec := idx.Images[m.manifest]
	cf, err := s.readConfig(rec.ID)
	if err != nil {
		return nil, err
	}
	layers := cf.RootFS.DiffIDs
	var out []HistoryEntry
	for _, h := range cf.History {
		e := HistoryEntry{Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if !h.EmptyLayer && len(layers) > 0 {
			e.Size = idx.Layers[layers[0].String()].Size
			layers = layers[1:]
		}
		out = append(out, e)
	}
	for _, d := range layers {
		out = append(out, HistoryEntry{Size: idx.Layers[d.String()].Size})
	}
	if len(out) == 0 {
		return nil, nil
	}
	// Newest first, as docker prints it.
	slices.Reverse(out)
	out[0].ID = rec.ID
	return out, nil
}
