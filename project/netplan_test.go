package project

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

func loadCompose(t *testing.T, compose string) *types.Project {
	t.Helper()
	dir := writeTree(t, t.TempDir(), map[string]string{"compose.yaml": compose})
	p, _ := mustLoad(t, LoadOptions{WorkingDir: dir, ProjectName: "np"})
	return p
}

func TestPlanNetworks(t *testing.T) {
	p := loadCompose(t, `
services:
  web:
    image: web
    ports: ["8080:80", "127.0.0.1:9090:9090", "5353:53/udp", "7000-7001:7000-7001", "3000"]
    networks: [front, back]
  api:
    image: api
    networks:
      back:
        aliases: [backend]
        ipv4_address: 10.213.7.10
  db:
    image: db
    network_mode: "service:api"
  tool:
    image: tool
    network_mode: host
  plain:
    image: plain
networks:
  front: {}
  back:
    internal: true
    ipam:
      config: [{subnet: 10.213.7.0/24}]
`)
	nets, services, err := planNetworks(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range sortedKeys(nets) {
		n := nets[k]
		got = append(got, fmt.Sprintf("%s name=%s subnet=%v gw=%v internal=%v", k, n.Name, n.Subnet, n.Gateway, n.Internal))
	}
	for _, k := range sortedKeys(services) {
		s := services[k]
		line := fmt.Sprintf("%s mode=%d target=%s", k, s.Mode, s.Target)
		for _, a := range s.Networks {
			line += fmt.Sprintf(" net=%s%v", a.Key, a.Aliases)
			if a.IPv4.IsValid() {
				line += "@" + a.IPv4.String()
			}
		}
		for _, port := range s.Ports {
			line += " " + port.String()
		}
		got = append(got, line)
	}
	want := []string{
		"back name=np_back subnet=10.213.7.0/24 gw=10.213.7.1 internal=true",
		"default name=np_default subnet=invalid Prefix gw=invalid IP internal=false",
		"front name=np_front subnet=invalid Prefix gw=invalid IP internal=false",
		"api mode=0 target= net=back[backend]@10.213.7.10",
		"db mode=3 target=api",
		"plain mode=0 target= net=default[]",
		"tool mode=1 target=",
		"web mode=0 target= net=back[] net=front[] 8080->80/tcp 127.0.0.1:9090->9090/tcp 5353->53/udp 7000->7000/tcp 7001->7001/tcp 0->3000/tcp",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPlanNetworksErrors(t *testing.T) {
	tests := []struct {
		name, compose, want string
	}{
		{"address outside the subnet", `
services:
  api: {image: api, networks: {back: {ipv4_address: 10.213.8.5}}}
networks:
  back: {ipam: {config: [{subnet: 10.213.7.0/24}]}}
`, `service "api": networks.back.ipv4_address: 10.213.8.5 is outside the subnet 10.213.7.0/24 of network "back"`},
		{"address without a declared subnet", `
services:
  api: {image: api, networks: {back: {ipv4_address: 10.213.8.5}}}
networks:
  back: {}
`, `needs a subnet declared in networks.back.ipam.config`},
		{"overlapping subnets", `
services:
  api: {image: api, networks: [a, b]}
networks:
  a: {ipam: {config: [{subnet: 10.213.0.0/16}]}}
  b: {ipam: {config: [{subnet: 10.213.7.0/24}]}}
`, `networks "a" and "b" overlap: 10.213.0.0/16 and 10.213.7.0/24`},
		{"two services on one host port", `
services:
  a: {image: a, ports: ["8080:80"]}
  b: {image: b, ports: ["127.0.0.1:8080:81"]}
`, `services "a" and "b" both publish host port 8080/tcp`},
		{"ports with a shared namespace", `
services:
  a: {image: a}
  b: {image: b, network_mode: "service:a", ports: ["80:80"]}
`, `service "b": ports: cannot publish ports with network_mode "service:a"`},
		{"unknown driver", `
services:
  a: {image: a, networks: [n]}
networks:
  n: {driver: overlay}
`, `networks.n: driver "overlay" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := planNetworks(loadCompose(t, tt.compose))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestPortClashSameServiceDifferentAddresses(t *testing.T) {
	one := serviceNet{Ports: []portSpec{
		{Protocol: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 80, ContainerPort: 80},
		{Protocol: "tcp", HostIP: netip.MustParseAddr("127.0.0.2"), HostPort: 80, ContainerPort: 81},
		{Protocol: "udp", HostPort: 80, ContainerPort: 80},
	}}
	if err := checkPortClashes(map[string]serviceNet{"a": one}); err != nil {
		t.Errorf("distinct addresses and protocols do not clash: %v", err)
	}
}
