package project

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime"
)

// TestContainerNetworkHoldsPorts: the spec asks the monitor to hold every
// published port on its host address, a picked port as it was picked.
func TestContainerNetworkHoldsPorts(t *testing.T) {
	store, err := network.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.CreateNetwork(network.Network{Name: "hold_default", Project: "hold", Bridge: "bt-bhold", Subnet: netip.MustParsePrefix("10.213.250.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{root: t.TempDir(), networks: store, ifPrefix: "bt-"}
	spec := runtime.Spec{Name: "hold-web-1", ID: strings.Repeat("a", 64), Hostname: "web", Labels: map[string]string{}}
	sn := serviceNet{Networks: []serviceAttachment{{Key: "default"}}, Ports: []portSpec{
		{Protocol: "tcp", HostPort: 18080, ContainerPort: 80},
		{Protocol: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), ContainerPort: 53},
	}}
	err = e.containerNetwork(&spec, &types.Project{Name: "hold"}, "web", sn, map[string]network.Network{"default": rec})
	if err != nil {
		t.Fatal(err)
	}
	ports := containerPorts(&runtime.Container{Spec: spec})
	if len(ports) != 2 || ports[1].HostPort == 0 {
		t.Fatalf("published ports %+v", ports)
	}
	want := []runtime.HostPort{
		{Protocol: "tcp", Port: 18080},
		{Protocol: "udp", IP: "127.0.0.1", Port: ports[1].HostPort},
	}
	if !reflect.DeepEqual(spec.HoldPorts, want) {
		t.Errorf("HoldPorts %+v, want %+v", spec.HoldPorts, want)
	}
}
