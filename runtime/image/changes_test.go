package image

import (
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestApplyChanges(t *testing.T) {
	tests := []struct {
		changes []string
		want    v1.Config
		wantErr string
	}{
		{changes: []string{`CMD ["/bin/sh", "-c", "echo hi"]`}, want: v1.Config{Cmd: []string{"/bin/sh", "-c", "echo hi"}}},
		{changes: []string{`CMD echo "hi there"`}, want: v1.Config{Cmd: []string{"/bin/sh", "-c", `echo "hi there"`}}},
		{changes: []string{`cmd [not json`}, want: v1.Config{Cmd: []string{"/bin/sh", "-c", "[not json"}}},
		{changes: []string{`ENTRYPOINT ["/entry"]`, `CMD ["arg"]`}, want: v1.Config{Entrypoint: []string{"/entry"}, Cmd: []string{"arg"}}},
		{changes: []string{`ENTRYPOINT /entry.sh`}, want: v1.Config{Entrypoint: []string{"/bin/sh", "-c", "/entry.sh"}}},
		{
			changes: []string{`ENV A=1 B="two words" C='it''s'`, `ENV A=3`, `ENV LEGACY some value`},
			want:    v1.Config{Env: []string{"A=3", "B=two words", "C=its", "LEGACY=some value"}},
		},
		{changes: []string{`ENV A=x\ y`}, want: v1.Config{Env: []string{"A=x y"}}},
		{changes: []string{`WORKDIR /srv`, `WORKDIR app`}, want: v1.Config{WorkingDir: "/srv/app"}},
		{changes: []string{`WORKDIR rel`}, want: v1.Config{WorkingDir: "/rel"}},
		{changes: []string{`USER 1000:1000`}, want: v1.Config{User: "1000:1000"}},
		{changes: []string{`LABEL a=b "c d"="e f"`}, want: v1.Config{Labels: map[string]string{"a": "b", "c d": "e f"}}},
		{
			changes: []string{`EXPOSE 80 53/udp 8000-8001/tcp`},
			want:    v1.Config{ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}},
		},
		{changes: []string{`STOPSIGNAL SIGQUIT`}, want: v1.Config{StopSignal: "SIGQUIT"}},
		{changes: []string{`VOLUME ["/data", "/logs"]`}, want: v1.Config{Volumes: map[string]struct{}{"/data": {}, "/logs": {}}}},
		{changes: []string{`VOLUME /data`}, want: v1.Config{Volumes: map[string]struct{}{"/data": {}}}},
		{
			changes: []string{`HEALTHCHECK --interval=5s --retries=3 CMD wget -q -O- localhost`},
			want: v1.Config{Healthcheck: &v1.HealthConfig{
				Test: []string{"CMD-SHELL", "wget -q -O- localhost"}, Interval: 5 * time.Second, Retries: 3,
			}},
		},
		{
			changes: []string{`HEALTHCHECK CMD ["true"]`},
			want:    v1.Config{Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "true"}}},
		},
		{changes: []string{`HEALTHCHECK NONE`}, want: v1.Config{Healthcheck: &v1.HealthConfig{Test: []string{"NONE"}}}},
		{changes: []string{`RUN make`}, wantErr: "unknown instruction RUN"},
		{changes: []string{`CMD`}, wantErr: "CMD needs an argument"},
		{changes: []string{`EXPOSE 70000`}, wantErr: "not a port number"},
		{changes: []string{`EXPOSE 80/icmp`}, wantErr: "unknown protocol"},
		{changes: []string{`ENV A="unterminated`}, wantErr: "unterminated quote"},
		{changes: []string{`LABEL =x`}, wantErr: "not KEY=VALUE"},
		{changes: []string{`HEALTHCHECK --interval=x CMD true`}, wantErr: "HEALTHCHECK --interval"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.changes, " | "), func(t *testing.T) {
			var cfg v1.Config
			err := applyChanges(&cfg, tt.changes)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg, tt.want) {
				t.Errorf("config = %+v\nwant     %+v", cfg, tt.want)
			}
		})
	}
}
