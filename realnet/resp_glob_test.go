package realnet

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// redisStringMatch is Redis 7.0's stringmatchlen (util.c), ported line for
// line with its recursion at each '*', as the reference the compiled
// matcher must agree with. Only the case-sensitive form: SCAN and KEYS do
// not fold case. Its bytes are unsigned, as C's chars are on ARM (on x86
// they are signed, which changes only ranges from below 0x80 to above).
func redisStringMatch(pattern, s string) bool {
	skipLonger := false
	return redisStringMatchImpl(pattern, s, &skipLonger, 0)
}

func redisStringMatchImpl(pattern, str string, skipLonger *bool, nesting int) bool {
	if nesting > 1000 {
		return false // Redis's protection against abusive patterns
	}
	p, s := 0, 0
	// at reads the pattern as C does: the byte past the end is the
	// string's NUL terminator.
	at := func(i int) byte {
		if i < len(pattern) {
			return pattern[i]
		}
		return 0
	}
	for p < len(pattern) && s < len(str) {
		switch pattern[p] {
		case '*':
			for p < len(pattern) && at(p+1) == '*' {
				p++
			}
			if len(pattern)-p == 1 {
				return true
			}
			for s < len(str) {
				if redisStringMatchImpl(pattern[p+1:], str[s:], skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				s++
			}
			*skipLonger = true
			return false
		case '?':
			s++
		case '[':
			p++
			not := at(p) == '^'
			if not {
				p++
			}
			match := false
			for {
				if at(p) == '\\' && len(pattern)-p >= 2 {
					p++
					if pattern[p] == str[s] {
						match = true
					}
				} else if at(p) == ']' && p < len(pattern) {
					break
				} else if p == len(pattern) {
					p--
					break
				} else if len(pattern)-p >= 3 && pattern[p+1] == '-' {
					start, end := pattern[p], pattern[p+2]
					if start > end {
						start, end = end, start
					}
					p += 2
					if str[s] >= start && str[s] <= end {
						match = true
					}
				} else if pattern[p] == str[s] {
					match = true
				}
				p++
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s++
		case '\\':
			if len(pattern)-p >= 2 {
				p++
			}
			fallthrough
		default:
			if pattern[p] != str[s] {
				return false
			}
			s++
		}
		p++
		if s == len(str) {
			for at(p) == '*' && p < len(pattern) {
				p++
			}
			break
		}
	}
	return p == len(pattern) && s == len(str)
}

func globMatches(pattern, key string) bool {
	return compileWholeGlob([]byte(pattern)).match(key)
}

// globCases are the glob, case by case: each row as Redis 7.0 answers it
// (checked against redis-server 7.0.15's KEYS).
var globCases = []struct {
	pattern, key string
	want         bool
}{
	{"*", "a", true},
	{"*", "a/b/c", true}, // path.Match's '*' would stop at '/'
	{"user:*", "user:1", true},
	{"user:*", "user:", true},
	{"user:*", "user", false},
	{"user:*", "users:1", false},
	{"*:1", "user:1", true},
	{"*:1", "user:12", false},
	{"a*b*c", "abc", true},
	{"a*b*c", "aXbYc", true},
	{"a*b*c", "aXbYcZ", false},
	{"a**b", "ab", true},
	{"h?llo", "hello", true},
	{"h?llo", "hllo", false},
	{"h?llo", "heello", false},
	{"h[ae]llo", "hallo", true},
	{"h[ae]llo", "hillo", false},
	{"h[^e]llo", "hallo", true},
	{"h[^e]llo", "hello", false},
	{"h[a-b]llo", "hbllo", true},
	{"h[a-b]llo", "hcllo", false},
	{"h[b-a]llo", "hallo", true}, // a range's ends in either order
	{"h[!e]llo", "h!llo", true},  // '!' is no negation in Redis
	{"h[!e]llo", "hallo", false},
	{`h\*llo`, "h*llo", true},
	{`h\*llo`, "hello", false},
	{`h\?llo`, "h?llo", true},
	{`\[a]`, "[a]", true},
	{`[\]]`, "]", true},
	{`[\-]`, "-", true},
	{`[a\-z]`, "b", false},
	{`[a-]`, "]", true}, // "a-]" is the range a..']', as Redis reads it
	{`[a-]`, "-", false},
	{"[ab", "a", true}, // a class left open ends at the pattern's end
	{"[ab", "ab", false},
	{"[", "[", false},
	{"[^", "x", true},
	{"a[", "a", false},
	{`a\`, `a\`, true}, // a '\' that ends the pattern is itself
	{"", "", true},
	{"*", "", false}, // Redis: no string, no match but the empty pattern
	{"a", "", false},
	{"?", "é", false}, // bytes, not runes: é is two
	{"??", "é", true},
	{"*a*a*a*a*a*a*a*b", strings.Repeat("a", 60), false},
	{"*a*a*a*a*a*a*a*b", strings.Repeat("a", 60) + "b", true},
	{"[a-c][d-f]*[^x]", "bez", true},
	{"[a-c][d-f]*[^x]", "bex", false},
	{"\x00*", "\x00\xff", true},
	{"[\x80-\xff]", "\xc9", true},
	// Unsigned, as Redis on ARM: Redis on x86 compares signed chars and
	// reads this range as \xc9..\xff and \x00..a, so it says false.
	{"[a-\xc9]", "\xa0", true},
}

// The compiled matcher, and the reference, answer every case as Redis.
func TestGlobTable(t *testing.T) {
	for _, tc := range globCases {
		if got := globMatches(tc.pattern, tc.key); got != tc.want {
			t.Errorf("glob %q on %q = %v, want %v", tc.pattern, tc.key, got, tc.want)
		}
		if ref := redisStringMatch(tc.pattern, tc.key); ref != tc.want {
			t.Errorf("reference: %q on %q = %v, want %v", tc.pattern, tc.key, ref, tc.want)
		}
	}
}

// globSplit: the literal prefix the scan reads under, escapes resolved,
// and the rest the host filters with.
func TestGlobSplit(t *testing.T) {
	for _, tc := range []struct{ pattern, prefix, rest string }{
		{"", "", ""},
		{"*", "", "*"},
		{"user:*", "user:", "*"},
		{"user:1", "user:1", ""},
		{"a?b", "a", "?b"},
		{"a[bc]", "a", "[bc]"},
		{`a\*b*`, "a*b", "*"},
		{`a\\*`, `a\`, "*"},
		{`a\`, `a\`, ""},
		{"]x*", "]x", "*"},
	} {
		prefix, rest := globSplit([]byte(tc.pattern))
		if prefix != tc.prefix || string(rest) != tc.rest {
			t.Errorf("globSplit(%q) = %q, %q; want %q, %q", tc.pattern, prefix, rest, tc.prefix, tc.rest)
		}
	}
	if msg := globRestError([]byte(strings.Repeat("?", globPatternRestBytesMax))); msg != "" {
		t.Errorf("a rest at the limit refused: %s", msg)
	}
	if msg := globRestError([]byte(strings.Repeat("?", globPatternRestBytesMax+1))); msg != "ERR dkv's pattern is too long: 65 bytes from its first '*', '?' or '[' on; the limit is 64" {
		t.Errorf("a rest past the limit: %q", msg)
	}
}

// globAlphabet is what random patterns and keys are made of: every byte
// the glob treats specially, and a few it does not.
const globAlphabet = `ab-]^*?[\`

func randomGlobString(r *rand.Rand, n int) string {
	b := make([]byte, r.IntN(n+1))
	for i := range b {
		if r.IntN(16) == 0 {
			b[i] = byte(r.IntN(256))
		} else {
			b[i] = globAlphabet[r.IntN(len(globAlphabet))]
		}
	}
	return string(b)
}

// The compiled matcher agrees with Redis's on random patterns and keys
// made of the bytes that matter.
func TestGlobAgreesWithRedis(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		pattern, key := randomGlobString(r, 12), randomGlobString(r, 12)
		if got, want := globMatches(pattern, key), redisStringMatch(pattern, key); got != want {
			t.Fatalf("glob %q on %q = %v; Redis's matcher says %v", pattern, key, got, want)
		}
	}
	// Long patterns: states over several words, up to the bound.
	long := func(n int, alphabet string) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 2_000 {
		pattern := long(1+r.IntN(globPatternRestBytesMax), "aaaa??????????b*")
		key := long(r.IntN(2*globPatternRestBytesMax), "aaaaaaab")
		if r.IntN(2) == 0 {
			// A key the pattern matches: each token given a byte it takes.
			var b strings.Builder
			for _, c := range []byte(pattern) {
				switch c {
				case '*':
					b.WriteString(long(r.IntN(4), "ab"))
				case '?':
					b.WriteString(long(1, "ab"))
				default:
					b.WriteByte(c)
				}
			}
			key = b.String()
		}
		if got, want := globMatches(pattern, key), redisStringMatch(pattern, key); got != want {
			t.Fatalf("glob %q on %q = %v; Redis's matcher says %v", pattern, key, got, want)
		}
	}
	for _, tc := range []struct {
		pattern, key string
		want         bool
	}{
		{"*" + strings.Repeat("?", 100) + "b", strings.Repeat("a", 150) + "b", true},
		{"*" + strings.Repeat("?", 100) + "b", strings.Repeat("a", 99) + "b", false},
		{strings.Repeat("?", 63) + "x", strings.Repeat("a", 63) + "x", true},
		{strings.Repeat("?", 64) + "x*", strings.Repeat("a", 64) + "xyz", true},
		{strings.Repeat("?", 64) + "x*", strings.Repeat("a", 63) + "xyz", false},
	} {
		if got := globMatches(tc.pattern, tc.key); got != tc.want {
			t.Errorf("glob of %d bytes on a key of %d = %v, want %v", len(tc.pattern), len(tc.key), got, tc.want)
		}
	}
}

func FuzzGlob(f *testing.F) {
	for _, seed := range [][2]string{
		{"*", "a"}, {"user:*", "user:1"}, {"h[^e]l?o", "hallo"}, {`[a-]`, "]"},
		{"[ab", "a"}, {`a\`, `a\`}, {"*a*b", "aab"}, {"[\\]x]*", "]]"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, key string) {
		if len(pattern) > 64 || len(key) > 64 {
			return // the reference backtracks: keep it fast
		}
		if got, want := globMatches(pattern, key), redisStringMatch(pattern, key); got != want {
			t.Fatalf("glob %q on %q = %v; Redis's matcher says %v", pattern, key, got, want)
		}
	})
}
