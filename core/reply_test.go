package core

import (
	"strings"
	"testing"
)

// touchValues loads every value's lines up to touchValueBytesMax, and the
// last byte within them: no value, an empty one, one byte, several lines,
// and one past the bound.
func TestTouchValues(t *testing.T) {
	str := func(s string) *string { return &s }
	long := strings.Repeat("a", touchValueBytesMax+100)
	mid := strings.Repeat("b", 130) // lines at 0, 64 and 128; last at 129
	replies := []pendingReply{
		{resp: Response{OK: true}},
		{resp: Response{OK: true, Value: str("")}},
		{resp: Response{OK: true, Value: str("\x03")}},
		{resp: Response{OK: true, Value: &mid}},
		{resp: Response{OK: true, Value: &long}},
	}
	a, b := byte('a'), byte('b') // sums of bytes wrap, as touchValues' does
	want := byte(3 + 3)          // the one byte, as first and last
	want += 4 * b                // 0, 64, 128, 129
	want += byte(touchValueBytesMax/64+1) * a
	if got := touchValues(replies); got != want {
		t.Fatalf("touchValues = %d, want %d", got, want)
	}
}
