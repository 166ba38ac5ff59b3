package seccomp

import (
	"reflect"
	"testing"
)

func TestProgramBinaryRoundTrip(t *testing.T) {
	p, err := Filter(nil, []string{"CAP_CHOWN", "CAP_KILL"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var q Program
	if err := q.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*p, q) {
		t.Error("the program read back differs from the one written")
	}
	for _, bad := range [][]byte{nil, []byte("BSF1"), append([]byte("XXXX\x00\x00\x00\x00"), make([]byte, 8)...), append(data, 1)} {
		if err := q.UnmarshalBinary(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
