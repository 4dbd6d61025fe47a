package nilcheck

import "testing"

type thing struct{}

func (*thing) Do() {}

type doer interface{ Do() }

func TestIsNil(t *testing.T) {
	var p *thing
	var d doer = p
	for _, c := range []struct {
		v    any
		want bool
	}{{nil, true}, {p, true}, {d, true}, {&thing{}, false}, {doer(&thing{}), false}, {3, false}} {
		if got := IsNil(c.v); got != c.want {
			t.Errorf("IsNil(%#v) = %v, want %v", c.v, got, c.want)
		}
	}
}
