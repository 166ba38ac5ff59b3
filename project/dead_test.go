package project

import (
	"maps"
	"testing"

	"github.com/berth-dev/berth/runtime"
)

// A dead container whose labels are lost belongs to a project only by the
// name compose gives its containers, PROJECT-SERVICE-N.
func TestAdoptDead(t *testing.T) {
	dead := runtime.State{Status: runtime.Dead, Error: "config.json: unexpected end of JSON input"}
	tests := []struct {
		name, container, project string
		st                       runtime.State
		labels                   map[string]string
		want                     map[string]string
	}{
		{"compose's name", "shop-web-1", "shop", dead, nil,
			map[string]string{LabelProject: "shop", LabelService: "web", LabelNumber: "1"}},
		{"a service with dashes", "shop-api-gw-12", "shop", dead, nil,
			map[string]string{LabelProject: "shop", LabelService: "api-gw", LabelNumber: "12"}},
		{"another project", "shopping-web-1", "shop", dead, nil, nil},
		{"no number", "shop-web", "shop", dead, nil, nil},
		{"number 0", "shop-web-0", "shop", dead, nil, nil},
		{"a container_name", "mydb", "shop", dead, nil, nil},
		{"a run container", "shop-web-run-1a2b3c", "shop", dead, nil, nil},
		{"labels kept (labels.json)", "shop-web-1", "shop", dead, map[string]string{LabelProject: "other"}, map[string]string{LabelProject: "other"}},
		{"not dead", "shop-web-1", "shop", runtime.State{Status: runtime.Exited}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &runtime.Container{Spec: runtime.Spec{Name: tt.container, Labels: tt.labels}, State: tt.st}
			got := adoptDead(c, tt.project)
			if got != (tt.want != nil && tt.labels == nil) {
				t.Errorf("adoptDead = %v", got)
			}
			if !maps.Equal(c.Spec.Labels, tt.want) {
				t.Errorf("labels %v, want %v", c.Spec.Labels, tt.want)
			}
		})
	}
}
