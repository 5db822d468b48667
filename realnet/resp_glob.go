package realnet

import (
	"strconv"
	"strings"
)

// Redis's glob, for SCAN's MATCH and KEYS: what Redis's stringmatchlen
// accepts, byte for byte (path.Match is not it: its '*' stops at '/', its
// classes take '!' and it refuses a malformed pattern, where Redis reads
// every pattern somehow):
//
//   - '*' matches any bytes, none included; '?' any one byte;
//   - '[abc]' one of the bytes, '[^abc]' one byte not among them, '[a-z]'
//     a range (its ends in either order, compared as unsigned bytes: Redis
//     compares C chars, signed on x86, so there a range from below 0x80 to
//     above it differs; no such range means anything in UTF-8), '\x'
//     inside a class the byte x;
//     a class left open at the pattern's end is closed there ("[ab" is
//     "[ab]"), and "a-]" at a class's end is the range 'a'..']', as in Redis;
//   - '\x' outside a class the byte x; a '\' that ends the pattern is
//     itself;
//   - any other byte is itself. Bytes, not runes: '?' is one byte of a
//     multi-byte UTF-8 character, as in Redis.
//
// Redis matches by backtracking, recursively at each '*' (and gives up
// past 1,000 nested stars, which a bounded pattern cannot reach). dkv
// compiles the pattern into a bit-parallel automaton instead (Shift-And):
// the time to match a key is its length times the pattern's states / 64,
// whatever the stars, so no pattern makes matching a page's keys
// quadratic on the node's loop; patterns are bounded so that the states
// stay few (globPatternRestBytesMax). The answer is Redis's for every
// pattern and key: a test checks it against a port of Redis's matcher.

// globPatternRestBytesMax bounds the part of a pattern from its first
// special byte ('*', '?' or '['; see globSplit) on: its states, and so the
// work per byte of a key. 64 bytes are one word of state: the matching
// runs on the node's loop, as replies are rendered, and at 256 bytes (5
// words) a page of 4,000 keys of 4 KiB took 163 ms to match where one
// word takes about a third of that (found by review). The literal prefix
// before it is not bounded here: it becomes the scan's prefix, which the
// node bounds as a key (--max-key-bytes). Patterns people write are a few
// tens of bytes.
const globPatternRestBytesMax = 64

// globSplit splits a pattern into its literal prefix, with its escapes
// resolved ("user\:1*" gives "user:1"), and the rest, from its first '*',
// '?' or '[' on: a key matches the pattern if and only if it starts with
// the prefix and what follows matches the rest, since each byte of the
// prefix matches exactly one byte of the key. The prefix becomes the scan's
// prefix, so the node reads only the keys that can match.
func globSplit(pattern []byte) (prefix string, rest []byte) {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*', '?', '[':
			return b.String(), pattern[i:]
		case '\\':
			if i+1 < len(pattern) {
				i++
			}
			b.WriteByte(pattern[i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// globRestError is the error for a pattern whose rest is over the bound,
// or "".
func globRestError(rest []byte) string {
	if len(rest) <= globPatternRestBytesMax {
		return ""
	}
	return "ERR dkv's pattern is too long: " + strconv.Itoa(len(rest)) +
		" bytes from its first '*', '?' or '[' on; the limit is " + strconv.Itoa(globPatternRestBytesMax)
}

// globMatcher matches keys against a pattern's rest (globSplit): its
// tokens, each a set of bytes, are the states of a Shift-And automaton.
// State k (bit k of a word vector) is "the first k tokens matched"; a star
// between tokens k-1 and k lets state k stay on any byte.
type globMatcher struct {
	all    bool // the rest is one or more stars: anything matches
	tokens int  // byte-consuming tokens: state tokens accepts
	words  int  // words of a state vector: tokens+1 bits
	// next[c*words:(c+1)*words] has bit k+1 set where token k takes byte c.
	next []uint64
	// stay has bit k set where a star sits at state k.
	stay []uint64
}

// compileGlob compiles a pattern's rest (globSplit), which the caller has
// bounded (globRestError).
func compileGlob(rest []byte) *globMatcher {
	type token struct {
		set  [4]uint64 // the bytes it takes, as a bitmap
		star bool      // a star, not a byte
	}
	var toks []token
	for i := 0; i < len(rest); {
		var t token
		switch c := rest[i]; c {
		case '*':
			t.star = true
			i++
		case '?':
			t.set = [4]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
			i++
		case '[':
			t.set, i = globClass(rest, i)
		case '\\':
			if i+1 < len(rest) {
				i++
			}
			t.set[rest[i]>>6] |= 1 << (rest[i] & 63)
			i++
		default:
			t.set[c>>6] |= 1 << (c & 63)
			i++
		}
		toks = append(toks, t)
	}
	m := &globMatcher{all: true}
	for _, t := range toks {
		if !t.star {
			m.all = false
			m.tokens++
		}
	}
	if m.all && len(toks) > 0 {
		return m // only stars: every key with the prefix matches
	}
	m.all = false
	m.words = (m.tokens + 1 + 63) / 64
	m.next = make([]uint64, 256*m.words)
	m.stay = make([]uint64, m.words)
	k := 0 // the state the next token leaves
	for _, t := range toks {
		if t.star {
			m.stay[k/64] |= 1 << (k % 64)
			continue
		}
		bit := k + 1
		for c := range 256 {
			if t.set[c>>6]&(1<<(c&63)) != 0 {
				m.next[c*m.words+bit/64] |= 1 << (bit % 64)
			}
		}
		k++
	}
	return m
}

// globClass reads the class that starts at rest[i] ('['), as Redis's
// stringmatchlen reads it, and returns its bytes and the index after it.
func globClass(rest []byte, i int) (set [4]uint64, next int) {
	add := func(c byte) { set[c>>6] |= 1 << (c & 63) }
	j := i + 1
	not := j < len(rest) && rest[j] == '^'
	if not {
		j++
	}
loop:
	for {
		switch {
		case j < len(rest) && rest[j] == '\\' && len(rest)-j >= 2:
			j++
			add(rest[j])
		case j < len(rest) && rest[j] == ']':
			break loop
		case j >= len(rest):
			// Left open: Redis steps back onto the pattern's last byte
			// and ends the class, and the pattern, there.
			j--
			break loop
		case len(rest)-j >= 3 && rest[j+1] == '-':
			lo, hi := rest[j], rest[j+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			for c := int(lo); c <= int(hi); c++ {
				add(byte(c))
			}
			j += 2
		default:
			add(rest[j])
		}
		j++
	}
	if not {
		for w := range set {
			set[w] = ^set[w]
		}
	}
	return set, j + 1
}

// matches reports whether s, what follows the pattern's prefix in a key,
// matches the pattern's rest.
func (m *globMatcher) matches(s string) bool {
	if m.all {
		return true
	}
	if len(s) < m.tokens {
		return false // every token takes a byte
	}
	// On the stack, no allocation: one word at globPatternRestBytesMax.
	var buf [8]uint64
	var d []uint64
	if m.words <= len(buf) {
		d = buf[:m.words]
	} else {
		d = make([]uint64, m.words)
	}
	d[0] = 1 // state 0: nothing matched yet
	for i := 0; i < len(s); i++ {
		next := m.next[int(s[i])*m.words:]
		live := uint64(0)
		carry := uint64(0)
		for w := range d {
			v := d[w]
			d[w] = (v<<1|carry)&next[w] | v&m.stay[w]
			carry = v >> 63
			live |= d[w]
		}
		if live == 0 {
			return false
		}
	}
	return d[m.tokens/64]&(1<<(m.tokens%64)) != 0
}

// glob is a whole pattern: its literal prefix, and a matcher of the rest.
type glob struct {
	prefix string
	rest   *globMatcher
}

// compileWholeGlob compiles a pattern that globRestError accepted.
// globLiteral reports whether pattern, not nil, has no wildcard: it
// matches one key, its prefix (globSplit), alone.
func globLiteral(pattern []byte) bool {
	if pattern == nil {
		return false
	}
	_, rest := globSplit(pattern)
	return len(rest) == 0
}

func compileWholeGlob(pattern []byte) glob {
	prefix, rest := globSplit(pattern)
	return glob{prefix: prefix, rest: compileGlob(rest)}
}

// match reports whether key matches the pattern. Keys are never empty in
// dkv; for an empty string Redis answers a match only for an empty pattern,
// and so does this (an empty rest needs an empty remainder).
func (g glob) match(key string) bool {
	if len(key) == 0 {
		return g.prefix == "" && g.rest.tokens == 0 && !g.rest.all
	}
	return strings.HasPrefix(key, g.prefix) && g.rest.matches(key[len(g.prefix):])
}
