package project

import (
	"testing"

	"github.com/berth-dev/berth/runtime"
)

func TestPlan(t *testing.T) {
	web := desiredService{Name: "web", Scale: 1, Hash: "h1"}
	tests := []struct {
		name     string
		desired  []desiredService
		observed []observedContainer
		opts     planOptions
		want     string
	}{
		{
			name:    "fresh project creates everything",
			desired: []desiredService{web, {Name: "db", Scale: 2, Hash: "h2"}},
			want:    "create web-1\ncreate db-1\ncreate db-2\n",
		},
		{
			name:     "unchanged and running is kept",
			desired:  []desiredService{web},
			observed: []observedContainer{{Name: "p-web-1", Service: "web", Number: 1, Hash: "h1", Status: runtime.Running}},
			want:     "keep web-1 p-web-1\n",
		},
		{
			name:     "unchanged and exited is started",
			desired:  []desiredService{web},
			observed: []observedContainer{{Name: "p-web-1", Service: "web", Number: 1, Hash: "h1", Status: runtime.Exited}},
			want:     "start web-1 p-web-1 (exited)\n",
		},
		{
			name:     "dead (broken records) is recreated",
			desired:  []desiredService{web},
			observed: []observedContainer{{Name: "p-web-1", Service: "web", Number: 1, Hash: "h1", Status: runtime.Dead}},
			want:     "recreate web-1 p-web-1 (dead)\n",
		},
		{
			name:     "changed config is recreated",
			desired:  []desiredService{web},
			observed: []observedContainer{{Name: "p-web-1", Service: "web", Number: 1, Hash: "old", Status: runtime.Running}},
			want:     "recreate web-1 p-web-1 (config changed)\n",
		},
		{
			name:     "another image under the service's tag is recreated",
			desired:  []desiredService{{Name: "web", Scale: 1, Hash: "h1", ImageID: "sha256:new"}},
			observed: []observedContainer{{Name: "p-web-1", Service: "web", Number: 1, Hash: "h1", Status: runtime.Running, ImageID: "sha256:old"}},
			want:     "recreate web-1 p-web-1 (image changed)\n",
		},
		{
			name:     "the same image is kept",
			desired:  []desiredService{{Name: "web", Scale: 1, Hash: "h1", ImageID: "sha256:same"}},
			observed: []observedContainer{{Name: "p-web-1", Service: "web", Number: 1, Hash: "h1", Status: runtime.Running, ImageID: "sha256:same"}},
			want:     "keep web-1 p-web-1\n",
		},
		{
			name:     "no-recreate keeps a container of another image",
			desired:  []desiredService{{Name: "web", Scale: 1, Hash: "h1", ImageID: "sha256:new"}},
			observed: []observedContainer{{Name: "p-web-1", Service: "web", Number: 1, Hash: "h1", Status: runtime.Running, ImageID: "sha256:old"}},
			opts:     planOptions{NoRecreate: true},
			want:     "keep web-1 p-web-1\n",
		},
		{
			name:     "no-recreate keeps a changed container",
			desired:  []desiredService{web},
			observed: []observedContainer{{Name: "p-web-1", Service: "web", Number: 1, Hash: "old", Status: runtime.Running}},
			opts:     planOptions{NoRecreate: true},
			want:     "keep web-1 p-web-1\n",
		},
		{
			name:     "force-recreate replaces an unchanged container",
			desired:  []desiredService{web},
			observed: []observedContainer{{Name: "p-web-1", Service: "web", Number: 1, Hash: "h1", Status: runtime.Running}},
			opts:     planOptions{ForceRecreate: true},
			want:     "recreate web-1 p-web-1 (forced)\n",
		},
		{
			name:    "scale down removes the highest numbers first",
			desired: []desiredService{web},
			observed: []observedContainer{
				{Name: "p-web-1", Service: "web", Number: 1, Hash: "h1", Status: runtime.Running},
				{Name: "p-web-2", Service: "web", Number: 2, Hash: "h1", Status: runtime.Running},
				{Name: "p-web-3", Service: "web", Number: 3, Hash: "h1", Status: runtime.Running},
			},
			want: "keep web-1 p-web-1\nremove web-3 p-web-3 (scaled down)\nremove web-2 p-web-2 (scaled down)\n",
		},
		{
			name:     "orphans stay without remove-orphans",
			desired:  []desiredService{web},
			observed: []observedContainer{{Name: "p-old-1", Service: "old", Number: 1, Hash: "x", Status: runtime.Running}},
			want:     "create web-1\n",
		},
		{
			name:     "orphans go with remove-orphans",
			desired:  []desiredService{web},
			observed: []observedContainer{{Name: "p-old-1", Service: "old", Number: 1, Hash: "x", Status: runtime.Running}},
			opts:     planOptions{RemoveOrphans: true},
			want:     "create web-1\nremove old-1 p-old-1 (orphan)\n",
		},
		{
			name:    "dead containers are recreated, created ones started",
			desired: []desiredService{{Name: "web", Scale: 2, Hash: "h1"}},
			observed: []observedContainer{
				{Name: "p-web-1", Service: "web", Number: 1, Hash: "h1", Status: runtime.Dead},
				{Name: "p-web-2", Service: "web", Number: 2, Hash: "h1", Status: runtime.Created},
			},
			want: "recreate web-1 p-web-1 (dead)\nstart web-2 p-web-2 (created)\n",
		},
		{
			name:     "a paused container is kept",
			desired:  []desiredService{web},
			observed: []observedContainer{{Name: "p-web-1", Service: "web", Number: 1, Hash: "h1", Status: runtime.Paused}},
			want:     "keep web-1 p-web-1\n",
		},
		{
			name:    "restart: true restarts a dependent whose dependency is recreated",
			desired: []desiredService{{Name: "db", Scale: 1, Hash: "new"}, web, {Name: "worker", Scale: 1, Hash: "h3"}},
			observed: []observedContainer{
				{Name: "p-db-1", Service: "db", Number: 1, Hash: "old", Status: runtime.Running},
				{Name: "p-web-1", Service: "web", Number: 1, Hash: "h1", Status: runtime.Running},
				{Name: "p-worker-1", Service: "worker", Number: 1, Hash: "h3", Status: runtime.Running},
			},
			opts: planOptions{RestartWith: map[string][]string{"web": {"db"}}},
			want: "recreate db-1 p-db-1 (config changed)\nrestart web-1 p-web-1 (db recreated)\nkeep worker-1 p-worker-1\n",
		},
		{
			name:    "restart: true does nothing when the dependency is kept",
			desired: []desiredService{{Name: "db", Scale: 1, Hash: "h2"}, web},
			observed: []observedContainer{
				{Name: "p-db-1", Service: "db", Number: 1, Hash: "h2", Status: runtime.Running},
				{Name: "p-web-1", Service: "web", Number: 1, Hash: "h1", Status: runtime.Running},
			},
			opts: planOptions{RestartWith: map[string][]string{"web": {"db"}}},
			want: "keep db-1 p-db-1\nkeep web-1 p-web-1\n",
		},
		{
			name:    "a dependent that changed itself is recreated, not restarted",
			desired: []desiredService{{Name: "db", Scale: 1, Hash: "new"}, web},
			observed: []observedContainer{
				{Name: "p-db-1", Service: "db", Number: 1, Hash: "old", Status: runtime.Running},
				{Name: "p-web-1", Service: "web", Number: 1, Hash: "old", Status: runtime.Running},
			},
			opts: planOptions{RestartWith: map[string][]string{"web": {"db"}}},
			want: "recreate db-1 p-db-1 (config changed)\nrecreate web-1 p-web-1 (config changed)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planText(plan(tt.desired, tt.observed, tt.opts)); got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestOrphans(t *testing.T) {
	got := orphans([]desiredService{{Name: "web"}}, []observedContainer{
		{Name: "p-web-1", Service: "web"}, {Name: "p-z-1", Service: "z"}, {Name: "p-a-1", Service: "a"},
	})
	if len(got) != 2 || got[0] != "p-a-1" || got[1] != "p-z-1" {
		t.Fatalf("orphans = %v", got)
	}
}
