package core

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every mutation has its own name, and ParseMutation finds it by that name.
func TestMutationNames(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range append([]Mutation{MutNone}, Mutations()...) {
		name := m.String()
		if name == "" || strings.HasPrefix(name, "mutation(") || seen[name] {
			t.Errorf("mutation %d has a missing or repeated name %q", uint8(m), name)
		}
		seen[name] = true
		if got, err := ParseMutation(name); err != nil || got != m {
			t.Errorf("ParseMutation(%q) = %v, %v; want %v", name, got, err, m)
		}
	}
	if _, err := ParseMutation("no-such-bug"); err == nil {
		t.Error("ParseMutation accepted an unknown name")
	}
}

// A planted bug is reachable only from the simulator and its runner: no
// code that ships in a server, a client or a benchmark names one, or sets
// a config's Mutation field.
func TestMutationsOnlyInSimulation(t *testing.T) {
	plants := regexp.MustCompile(`\b(core|election)\.Mut[A-Z]\w*|\.Mutation\b|\bMutation:`)
	for _, dir := range []string{"../cmd/node", "../cmd/cluster", "../cmd/kv", "../cmd/bench", "../realnet", "../disk", "../client", "../internal"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if loc := plants.FindIndex(src); loc != nil {
				t.Errorf("%s plants a mutation (%q): only package sim and cmd/sim may", path, src[loc[0]:loc[1]])
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}
