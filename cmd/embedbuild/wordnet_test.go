package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseDataLine(t *testing.T) {
	cases := []struct {
		line string
		want string // pos offset words / pointers
	}{
		{"00001930 03 n 01 physical_entity 0 002 @ 00001740 n 0000 ~ 00002452 n 0000 | an entity that has physical existence  ",
			"n 1930 [physical_entity] [{@ 110 1740} {~ 110 2452}]"},
		{"00002137 03 n 02 abstraction 0 abstract_entity 0 001 @ 00001740 n 0000 | a general concept",
			"n 2137 [abstraction abstract_entity] [{@ 110 1740}]"},
		// A satellite adjective with syntactic markers, filed as "a".
		{"00014358 00 s 02 abounding 0 galore(ip) 0 001 & 00013887 a 0000 | existing in abundance",
			"a 14358 [abounding galore] [{& 97 13887}]"},
		// A verb with frames after the pointers; a lex_id that is not 0.
		{"00004032 29 v 02 sigh 0 suspire 4 002 @ 00001740 v 0000 + 07129602 n 0202 01 + 02 00 | heave a sigh",
			"v 4032 [sigh suspire] [{@ 118 1740} {+ 110 7129602}]"},
		// Upper-case lemmas are folded; a hex word count.
		{"00000010 18 n 0a A 0 B 0 C 0 D 0 E 0 F 0 G 0 H 0 I 0 J 0 000 | ten",
			"n 10 [a b c d e f g h i j] []"},
		{"00000011 02 r 01 quickly 0 000 | with speed", "r 11 [quickly] []"},
	}
	for _, c := range cases {
		s, err := parseDataLine(c.line)
		if err != nil {
			t.Errorf("%.30q: %v", c.line, err)
			continue
		}
		if got := fmt.Sprintf("%c %d %v %v", s.pos, s.offset, s.words, s.ptrs); got != c.want {
			t.Errorf("%.30q:\n got %s\nwant %s", c.line, got, c.want)
		}
	}
	bad := []string{
		"00001930 03 n",                                     // too short
		"0000x930 03 n 01 word 0 000 | g",                   // offset
		"00001930 03 q 01 word 0 000 | g",                   // synset type
		"00001930 03 n zz word 0 000 | g",                   // word count
		"00001930 03 n 00 000 x y | g",                      // zero words
		"00001930 03 n 03 word 0 000 | g",                   // fewer words than announced
		"00001930 03 n 01 word 0 00x | g",                   // pointer count
		"00001930 03 n 01 word 0 002 @ 1 n 0000 | g",        // fewer pointers than announced
		"00001930 03 n 01 word 0 001 @ 00000001 q 0000 | g", // pointer pos
	}
	for _, line := range bad {
		if _, err := parseDataLine(line); err == nil {
			t.Errorf("%q parsed", line)
		}
	}
}

func TestParseDataFileSkipsLicence(t *testing.T) {
	in := "  1 This software and database is being provided to you, the LICENSEE, by  \n" +
		"  2 Princeton University under the following license.  \n" +
		"00000001 03 n 02 car 0 auto 0 001 @ 00000002 n 0000 | a motor vehicle  \n" +
		"00000002 03 n 01 vehicle 0 000 | a conveyance  \n"
	ss, err := parseDataFile(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 || ss[0].words[1] != "auto" || ss[1].words[0] != "vehicle" {
		t.Fatalf("got %+v", ss)
	}
	if _, err := parseDataFile(strings.NewReader(in + "garbage line\n")); err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("bad line: %v, want an error naming line 5", err)
	}
}
