package project

import (
	"slices"
	"testing"
)

func TestUnsupported(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		profiles []string
		want     []string
	}{
		{
			name: "minimal",
			file: webOnly,
		},
		{
			name: "everything supported",
			file: `
x-defaults: &defaults
  labels: {team: a}
services:
  web:
    <<: *defaults
    image: nginx
    command: ["nginx", "-g", "daemon off;"]
    entrypoint: /docker-entrypoint.sh
    environment: {A: "1"}
    env_file: [app.env]
    working_dir: /srv
    user: "1000:1000"
    tmpfs: [/run]
    container_name: web1
    hostname: web
    domainname: example.org
    stop_signal: SIGQUIT
    stop_grace_period: 3s
    read_only: true
    extra_hosts: ["db.local:10.0.0.2"]
    networks: [default]
    depends_on:
      db:
        condition: service_healthy
        restart: true
      cache:
        condition: service_started
        required: false
    healthcheck:
      test: ["CMD-SHELL", "wget -q localhost"]
      interval: 10s
      timeout: 2s
      retries: 3
      start_period: 30s
      start_interval: 1s
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - type: bind
        source: ./conf
        target: /etc/nginx/conf.d
        bind:
          create_host_path: false
      - type: volume
        source: data
        target: /data
        volume:
          nocopy: true
      - type: tmpfs
        target: /cache
        tmpfs:
          size: 1m
          mode: 0o1777
    x-note: extensions are not for berth
  db:
    image: postgres
    profiles: [db]
    volumes: [ext:/ext]
    healthcheck:
      disable: true
  cache:
    image: redis
    profiles: [cache]
volumes:
  data:
    driver: local
    labels: {a: b}
    x-more: yes
  ext:
    external: true
x-top: whatever
`,
			profiles: []string{"db"},
		},
		{
			name: "not yet",
			file: `
services:
  web:
    image: nginx
    ports: ["8080:80"]
    expose: [80]
    restart: always
    deploy:
      resources:
        limits: {memory: 100m}
      placement: {constraints: [node.role==manager]}
    scale: 2
    build: .
    pull_policy: always
    cap_add: [NET_ADMIN]
    privileged: true
    init: true
    tty: true
    network_mode: none
`,
			want: []string{
				"services.web.deploy.placement",
				"services.web.init",
				"services.web.tty",
			},
		},
		{
			name: "build: what the builder takes, and what it does not",
			file: `
services:
  web:
    build:
      context: .
      dockerfile: Dockerfile.dev
      args: {A: "1"}
      target: dev
      labels: {a: b}
      tags: [web:dev]
      no_cache: true
      pull: true
      network: bridge
      cache_from: [web:cache]
      platforms: [linux/arm64]
  inline:
    build:
      dockerfile_inline: FROM scratch
      network: none
`,
			want: []string{"services.web.build.cache_from", "services.web.build.platforms"},
		},
		{
			name: "depends_on conditions and restart",
			file: `
services:
  web:
    image: nginx
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully, restart: true}
      cache: {condition: service_started}
  db: {image: postgres}
  migrate: {image: migrate}
  cache: {image: redis}
`,
			want: nil,
		},
		{
			name: "volume options",
			file: `
services:
  web:
    image: nginx
    volumes:
      - ./a:/a
      - type: bind
        source: ./b
        target: /b
        bind: {propagation: rshared}
      - type: volume
        source: data
        target: /data
        volume: {subpath: sub}
      - ./c:/c:z
volumes:
  data:
    driver: nfs
    driver_opts: {type: nfs}
`,
			want: []string{
				"services.web.volumes[1].bind.propagation", "services.web.volumes[2].volume.subpath",
				"services.web.volumes[3].bind.selinux", "volumes.data.driver", "volumes.data.driver_opts",
			},
		},
		{
			name: "networks",
			file: `
services:
  web:
    image: nginx
    networks:
      default:
        aliases: [www]
  api:
    image: api
    networks: [front]
networks:
  default:
    driver_opts: {mtu: "1400"}
  front: {}
`,
			want: []string{"networks.default.driver_opts"},
		},
		{
			name: "renamed default network",
			file: webOnly + "networks:\n  default:\n    name: shared\n",
			want: nil,
		},
		{
			name: "configs and secrets",
			file: `
services:
  web:
    image: nginx
    configs: [conf]
    secrets: [key]
configs:
  conf: {content: "x"}
secrets:
  key: {environment: HOME}
`,
			want: []string{"configs.conf", "secrets.key", "services.web.configs", "services.web.secrets"},
		},
		{
			name: "disabled services are not reported",
			file: webOnly + "  debug:\n    image: busybox\n    profiles: [debug]\n    ports: [\"80:80\"]\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, t.TempDir(), map[string]string{"compose.yaml": tt.file, "app.env": "B=2\n"})
			p, _ := mustLoad(t, LoadOptions{WorkingDir: dir, Profiles: tt.profiles})
			if got := Unsupported(p); !slices.Equal(got, tt.want) {
				t.Errorf("Unsupported = %q\nwant          %q", got, tt.want)
			}
		})
	}
}
