package mesh

import (
	"testing"

	"pgregory.net/rapid"
)

func genStamp() *rapid.Generator[Stamp] {
	return rapid.Custom(func(t *rapid.T) Stamp {
		return Stamp{
			Wall:    rapid.Int64Range(0, 1<<62).Draw(t, "wall"),
			Logical: rapid.Uint32().Draw(t, "logical"),
			Node:    rapid.Uint16().Draw(t, "node"),
		}
	})
}

// The laws of a hybrid logical clock, under any interleaving of readings
// (with calendar time jumping either way) and observed stamps: every
// reading is above every earlier reading and every observed stamp, and
// never below calendar time.
func TestHLCLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		node := rapid.Uint16().Draw(t, "node")
		floor := genStamp().Draw(t, "floor")
		floor.Logical = min(floor.Logical, 1<<31) // room to count on
		h := NewHLC(node, floor)
		above := floor // everything a reading must beat
		wall := rapid.Int64Range(0, 1<<62).Draw(t, "start")
		for i := range rapid.IntRange(1, 100).Draw(t, "steps") {
			if rapid.Bool().Draw(t, "observe") {
				s := genStamp().Draw(t, "observed")
				s.Logical = min(s.Logical, 1<<31)
				h.Observe(s)
				if above.Less(s) {
					above = s
				}
				continue
			}
			wall += rapid.Int64Range(-1000, 1000).Draw(t, "jump")
			r := h.Now(wall)
			if r.Node != node {
				t.Fatalf("step %d: reading %s carries node %d, want %d", i, r, r.Node, node)
			}
			if !(Stamp{Wall: above.Wall, Logical: above.Logical}).Less(Stamp{Wall: r.Wall, Logical: r.Logical}) {
				t.Fatalf("step %d: reading %s is not above %s", i, r, above)
			}
			if r.Wall < wall {
				t.Fatalf("step %d: reading %s is below calendar time %d", i, r, wall)
			}
			above = r
		}
	})
}

// Stamps order by wall, then logical, then node; and the protocol's
// token reads back as the stamp it was.
func TestStampOrderAndText(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genStamp().Draw(t, "a"), genStamp().Draw(t, "b")
		want := 0
		switch {
		case a.Wall != b.Wall:
			want = map[bool]int{true: -1, false: 1}[a.Wall < b.Wall]
		case a.Logical != b.Logical:
			want = map[bool]int{true: -1, false: 1}[a.Logical < b.Logical]
		case a.Node != b.Node:
			want = map[bool]int{true: -1, false: 1}[a.Node < b.Node]
		}
		if got := a.Compare(b); got != want || b.Compare(a) != -want {
			t.Fatalf("Compare(%s, %s) = %d, want %d", a, b, got, want)
		}
		back, err := ParseStamp(a.String())
		if err != nil || back != a {
			t.Fatalf("ParseStamp(%q) = %v, %v", a.String(), back, err)
		}
		enc := appendStamp(nil, a)
		if len(enc) != stampBytes || decodeStamp(enc) != a {
			t.Fatalf("binary round trip of %s gave %s", a, decodeStamp(enc))
		}
	})
}

func TestParseStampRefusesJunk(t *testing.T) {
	for _, s := range []string{"", "1", "1.2", "1.2.3.4", "a.b.c", "-1.0.0", "1.4294967296.0", "1.0.65536", "1..2"} {
		if _, err := ParseStamp(s); err == nil {
			t.Errorf("ParseStamp(%q) accepted it", s)
		}
	}
}
