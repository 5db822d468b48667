package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// synset is one line of a WordNet 3.0 data file (wndb(5)): its words and
// its pointers to other synsets. The gloss is not kept (see BUILD.md).
type synset struct {
	pos    byte // n, v, a, r: satellites (s) are filed as a, as their pointers name them
	offset uint32
	words  []string // lower-case lemmas; multi-word lemmas keep their underscores
	ptrs   []pointer
}

type pointer struct {
	sym    string // "@" hypernym, "@i" instance hypernym, "&" similar to, …
	pos    byte
	offset uint32
}

type synsetKey struct {
	pos    byte
	offset uint32
}

func (s *synset) key() synsetKey { return synsetKey{s.pos, s.offset} }

// wordnetLineBytesMax bounds a data-file line; the longest in WordNet 3.0
// is about 15 KB (a synset with hundreds of hyponym pointers).
const wordnetLineBytesMax = 1 << 20

// wordnetFiles are read in this order, which fixes the order of synsets
// and so of everything derived from them.
var wordnetFiles = []string{"data.noun", "data.verb", "data.adj", "data.adv"}

// readWordNet reads the four data files of a WordNet 3.0 dictionary
// directory (Debian's wordnet-base installs them in /usr/share/wordnet).
func readWordNet(dir string) ([]synset, error) {
	var all []synset
	for _, name := range wordnetFiles {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		ss, err := parseDataFile(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		all = append(all, ss...)
	}
	return all, nil
}

// parseDataFile parses one data file; the licence header lines (which
// start with two spaces) are skipped.
func parseDataFile(r io.Reader) ([]synset, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), wordnetLineBytesMax)
	var out []synset
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if line == "" || line[0] == ' ' {
			continue
		}
		s, err := parseDataLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseDataLine parses
//
//	offset lex_filenum ss_type w_cnt {word lex_id} p_cnt {sym offset pos src/tgt} [frames] | gloss
//
// where w_cnt is two hex digits and p_cnt three decimal digits.
func parseDataLine(line string) (synset, error) {
	pre, _, _ := strings.Cut(line, " | ")
	f := strings.Fields(pre)
	if len(f) < 6 {
		return synset{}, fmt.Errorf("too few fields")
	}
	off, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return synset{}, fmt.Errorf("offset %q", f[0])
	}
	s := synset{offset: uint32(off), pos: normPOS(f[2])}
	if s.pos == 0 {
		return synset{}, fmt.Errorf("synset type %q", f[2])
	}
	wcnt, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil || wcnt == 0 {
		return synset{}, fmt.Errorf("word count %q", f[3])
	}
	i := 4
	if len(f) < i+2*int(wcnt)+1 {
		return synset{}, fmt.Errorf("%d words announced, fewer present", wcnt)
	}
	for range wcnt {
		w := strings.ToLower(f[i])
		// Adjectives may carry a syntactic marker: (a), (p) or (ip).
		if j := strings.IndexByte(w, '('); j > 0 && strings.HasSuffix(w, ")") {
			w = w[:j]
		}
		s.words = append(s.words, w)
		i += 2
	}
	pcnt, err := strconv.ParseUint(f[i], 10, 16)
	if err != nil {
		return synset{}, fmt.Errorf("pointer count %q", f[i])
	}
	i++
	if len(f) < i+4*int(pcnt) {
		return synset{}, fmt.Errorf("%d pointers announced, fewer present", pcnt)
	}
	for range pcnt {
		po, err := strconv.ParseUint(f[i+1], 10, 32)
		pp := normPOS(f[i+2])
		if err != nil || pp == 0 {
			return synset{}, fmt.Errorf("pointer %q", strings.Join(f[i:i+4], " "))
		}
		s.ptrs = append(s.ptrs, pointer{sym: f[i], offset: uint32(po), pos: pp})
		i += 4
	}
	return s, nil // verb frames, if any, follow; they are not needed
}

func normPOS(p string) byte {
	switch p {
	case "n", "v", "a", "r":
		return p[0]
	case "s":
		return 'a'
	}
	return 0
}
