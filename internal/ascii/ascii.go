// Package ascii holds the word-at-a-time tests that pass over plain text
// eight bytes at a time: the indexes' text scanners use them, and the JSON
// encoder to find strings that need no escape.
package ascii

// Load8 is the first eight bytes of s as a little-endian word; s must
// hold at least eight.
func Load8(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// Printable8 reports whether the eight bytes of x (Load8) are all
// printable ASCII (0x20 to 0x7e), testing them as one word: the common
// case, which a scanner of English text takes eight bytes at a time.
func Printable8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// A byte below 0x20 (x-0x20 borrows into its high bit), a DEL (x^0x7f
	// has a zero byte), or a byte of 0x80 or more sets a high bit here.
	d := x ^ 0x7f*ones
	return (x-0x20*ones)&^x&highs|(d-ones)&^d&highs|x&highs == 0
}

// Has8 reports whether one of the eight bytes of x (Load8) is b.
func Has8(x uint64, b byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// A byte of d is zero where x holds b; subtracting one borrows into
	// the high bit of exactly the lowest such byte (and maybe above it).
	d := x ^ uint64(b)*ones
	return (d-ones)&^d&highs != 0
}
