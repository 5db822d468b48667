package textidx

import "testing"

// stemExamples are word → stem pairs typed in from the Porter2 description:
// a stretch of its sample vocabulary (consign…, knack…) and the examples it
// gives with its rules.
var stemExamples = [][2]string{
	{"consign", "consign"}, {"consigned", "consign"}, {"consigning", "consign"}, {"consignment", "consign"},
	{"consist", "consist"}, {"consisted", "consist"}, {"consistency", "consist"}, {"consistent", "consist"},
	{"consistently", "consist"}, {"consisting", "consist"}, {"consists", "consist"}, {"consolation", "consol"},
	{"consolations", "consol"}, {"consolatory", "consolatori"}, {"console", "consol"}, {"consoled", "consol"},
	{"consoles", "consol"}, {"consolidate", "consolid"}, {"consolidated", "consolid"}, {"consolidating", "consolid"},
	{"consoling", "consol"}, {"consolingly", "consol"}, {"consols", "consol"}, {"consonant", "conson"},
	{"consort", "consort"}, {"consorted", "consort"}, {"consorting", "consort"}, {"conspicuous", "conspicu"},
	{"conspicuously", "conspicu"}, {"conspiracy", "conspiraci"}, {"conspirator", "conspir"}, {"conspirators", "conspir"},
	{"conspire", "conspir"}, {"conspired", "conspir"}, {"conspiring", "conspir"}, {"constable", "constabl"},
	{"constables", "constabl"}, {"constance", "constanc"}, {"constancy", "constanc"}, {"constant", "constant"},
	{"knack", "knack"}, {"knackeries", "knackeri"}, {"knacks", "knack"}, {"knag", "knag"},
	{"knave", "knave"}, {"knaves", "knave"}, {"knavish", "knavish"}, {"kneaded", "knead"},
	{"kneading", "knead"}, {"knee", "knee"}, {"kneel", "kneel"}, {"kneeled", "kneel"},
	{"kneeling", "kneel"}, {"kneels", "kneel"}, {"knees", "knee"}, {"knell", "knell"},
	{"knelt", "knelt"}, {"knew", "knew"}, {"knick", "knick"}, {"knif", "knif"},
	{"knife", "knife"}, {"knight", "knight"}, {"knightly", "knight"}, {"knights", "knight"},
	{"knit", "knit"}, {"knits", "knit"}, {"knitted", "knit"}, {"knitting", "knit"},
	{"knives", "knive"}, {"knob", "knob"}, {"knobs", "knob"}, {"knock", "knock"},
	{"knocked", "knock"}, {"knocker", "knocker"}, {"knockers", "knocker"}, {"knocking", "knock"},
	{"knocks", "knock"}, {"knopp", "knopp"}, {"knot", "knot"}, {"knots", "knot"},
	// The examples the description gives with its rules, and a few more.
	{"gas", "gas"}, {"this", "this"}, {"gaps", "gap"}, {"kiwis", "kiwi"}, {"ties", "tie"}, {"cries", "cri"},
	{"luxuriating", "luxuri"}, {"hopping", "hop"}, {"hoping", "hope"}, {"cry", "cri"}, {"by", "by"}, {"say", "say"},
	{"generously", "generous"}, {"generate", "generat"}, {"communism", "communism"}, {"arsenal", "arsenal"},
	{"skies", "sky"}, {"dying", "die"}, {"news", "news"}, {"inning", "inning"}, {"proceed", "proceed"},
	{"running", "run"}, {"happiness", "happi"}, {"relational", "relat"}, {"conditional", "condit"},
	{"university", "univers"}, {"youth", "youth"}, {"sayings", "say"}, {"feed", "feed"}, {"agreed", "agre"},
	{"fluently", "fluentli"}, {"hopeful", "hope"}, {"electrical", "electr"}, {"adjustable", "adjust"},
}

func TestStemExamples(t *testing.T) {
	for _, c := range stemExamples {
		if got := string(stem([]byte(c[0]))); got != c[1] {
			t.Errorf("stem(%q) = %q, want %q", c[0], got, c[1])
		}
	}
}

// TestStemNeverGrows checks the property the in-place design rests on: a
// stem is never longer than its word, and stemming is stable on short and
// over-long words.
func TestStemNeverGrows(t *testing.T) {
	words := []string{"a", "ab", "abc", "yyy", "yey", "eeeeed", "ied", "ies", "sses", "ing", "eedly", "ying", "ogi", "li",
		"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"}
	for _, c := range stemExamples {
		words = append(words, c[0])
	}
	for _, w := range words {
		b := []byte(w)
		got := stem(b)
		if len(got) > len(w) {
			t.Errorf("stem(%q) = %q grew", w, got)
		}
		if len(w) <= 2 || len(w) > stemBytesMax {
			if string(got) != w {
				t.Errorf("stem(%q) = %q, want it unchanged", w, got)
			}
		}
	}
}
