package ascii

import (
	"testing"

	"pgregory.net/rapid"
)

// Printable8 (of Load8) agrees with a byte-by-byte test on any eight bytes.
func TestPrintable8(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 8, 8).Draw(t, "bytes")
		// Bias towards the edges of the printable range.
		for i := range b {
			if rapid.Bool().Draw(t, "edge") {
				b[i] = rapid.SampledFrom([]byte{0x00, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xff}).Draw(t, "edge byte")
			}
		}
		want := true
		for _, c := range b {
			want = want && c >= 0x20 && c <= 0x7e
		}
		if got := Printable8(Load8(string(b))); got != want {
			t.Fatalf("Printable8(%q) = %v, want %v", b, got, want)
		}
	})
}

// Has8 agrees with a byte-by-byte search on any eight bytes and byte.
func TestHas8(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 8, 8).Draw(t, "bytes")
		c := rapid.Byte().Draw(t, "byte")
		// Put the byte sought, and its neighbours, in some places.
		for i := range b {
			if rapid.Bool().Draw(t, "near") {
				b[i] = c + rapid.SampledFrom([]byte{0, 0, 1, 0xff, 0x80}).Draw(t, "offset")
			}
		}
		want := false
		for _, x := range b {
			want = want || x == c
		}
		if got := Has8(Load8(string(b)), c); got != want {
			t.Fatalf("Has8(%q, %q) = %v, want %v", b, c, got, want)
		}
	})
}
