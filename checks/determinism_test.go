package checks

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The determinism scan enforces the plan's rules for node logic (docs/ARCHITECTURE.md)
// mechanically, so that they hold without anyone remembering them. It parses
// the packages with go/parser and type-checks them with go/types (from
// source), and reports:
//
//	go        a go statement
//	chan      a channel type (make(chan …) included), a send, a receive, a select
//	sync      any use of package sync (Mutex, RWMutex, WaitGroup, Once, …) or sync/atomic
//	io        an import of os, net, syscall (or their subpackages, or x/sys)
//	time      time.Now, Sleep, After, AfterFunc, NewTimer, Tick, NewTicker, Since, Until
//	rand      an import of math/rand, math/rand/v2 or crypto/rand: randomness comes from Env.Rand
//	maporder  a range over a map whose body appends to a slice that is not
//	          sorted after the loop, or writes output (Write*, Append, Send,
//	          Print*/Fprint*, Encode, Logf, a ReplyFunc call, string +=)
//
// Rules go … rand are syntactic and exact. maporder needs types, to know
// that the ranged expression is a map; when a package does not type-check
// (say, mid-refactor) the scan says so and checks that rule only where it
// could. It is a heuristic: it cannot see an order leaking through a
// helper function called from the loop, and "sorted after the loop" only
// asks that some sort call follow the loop in the same block. Tests
// (_test.go files) are not node logic and are not scanned.

// nodeLogic are the packages the rules bind, relative to the module root.
var nodeLogic = []string{"core", "election", "mesh", "textidx", "vecidx", "internal/indexes", "internal/ascii"}

type violation struct {
	rule string
	pos  token.Position
	msg  string
}

func (v violation) String() string { return fmt.Sprintf("%s: [%s] %s", v.pos, v.rule, v.msg) }

// scanResult is what scanning one package found.
type scanResult struct {
	violations []violation
	typeErrs   []error // the maporder rule may have missed something where types failed
}

// One file set and one importer for every scan: the importer type-checks
// imported packages from source and caches them, which makes the second
// scan that imports fmt or os cheap.
var (
	scanFset     = token.NewFileSet()
	scanImporter = importer.ForCompiler(scanFset, "source", nil)
)

// scanFiles scans the given sources (name -> content) as one package.
func scanFiles(pkgPath string, srcs map[string][]byte) (scanResult, error) {
	fset := scanFset
	var files []*ast.File
	var names []string
	for n := range srcs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f, err := parser.ParseFile(fset, n, srcs[n], parser.SkipObjectResolution)
		if err != nil {
			return scanResult{}, err
		}
		files = append(files, f)
	}
	var res scanResult
	info := &types.Info{
		Types: map[ast.Expr]types.TypeAndValue{},
		Uses:  map[*ast.Ident]types.Object{},
	}
	conf := types.Config{
		Importer: scanImporter,
		Error:    func(err error) { res.typeErrs = append(res.typeErrs, err) },
	}
	conf.Check(pkgPath, fset, files, info) // errors collected above; info is filled as far as possible
	for _, f := range files {
		s := &scanner{fset: fset, info: info, imports: map[string]string{}}
		s.file(f)
		res.violations = append(res.violations, s.found...)
	}
	return res, nil
}

// scanDir scans the non-test Go files of one directory.
func scanDir(dir, pkgPath string) (scanResult, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return scanResult{}, err
	}
	srcs := map[string][]byte{}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			return scanResult{}, err
		}
		srcs[n] = b
	}
	return scanFiles(pkgPath, srcs)
}

type scanner struct {
	fset    *token.FileSet
	info    *types.Info
	imports map[string]string // local name -> import path
	found   []violation
}

func (s *scanner) report(rule string, n ast.Node, format string, args ...any) {
	s.found = append(s.found, violation{rule: rule, pos: s.fset.Position(n.Pos()), msg: fmt.Sprintf(format, args...)})
}

var forbiddenTime = map[string]bool{
	"Now": true, "Sleep": true, "After": true, "AfterFunc": true, "NewTimer": true,
	"Tick": true, "NewTicker": true, "Since": true, "Until": true,
}

func (s *scanner) file(f *ast.File) {
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if path == "math/rand/v2" {
			name = "rand"
		}
		if imp.Name != nil {
			name = imp.Name.Name
		}
		s.imports[name] = path
		switch {
		case path == "os" || strings.HasPrefix(path, "os/") || path == "net" || strings.HasPrefix(path, "net/") ||
			path == "syscall" || strings.HasPrefix(path, "golang.org/x/sys/"):
			s.report("io", imp, "imports %q: node logic reaches the world only through Env (Disk, Network)", path)
		case path == "math/rand" || path == "math/rand/v2" || path == "crypto/rand":
			s.report("rand", imp, "imports %q: randomness comes from Env.Rand, seeded by the host", path)
		case path == "sync/atomic":
			s.report("sync", imp, "imports %q: node logic is single-threaded", path)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			s.report("go", n, "go statement: node logic starts no goroutines")
		case *ast.ChanType:
			s.report("chan", n, "channel type: node logic uses no channels")
		case *ast.SendStmt:
			s.report("chan", n, "channel send")
		case *ast.UnaryExpr:
			if n.Op == token.ARROW {
				s.report("chan", n, "channel receive")
			}
		case *ast.SelectStmt:
			s.report("chan", n, "select statement")
		case *ast.SelectorExpr:
			s.selector(n)
		case *ast.BlockStmt:
			s.block(n.List)
		case *ast.CaseClause:
			s.block(n.Body)
		case *ast.CommClause:
			s.block(n.Body)
		}
		return true
	})
}

// pkgOf returns the import path x names, if x is a package name.
func (s *scanner) pkgOf(x ast.Expr) (string, bool) {
	id, ok := x.(*ast.Ident)
	if !ok {
		return "", false
	}
	if obj, ok := s.info.Uses[id]; ok {
		if pn, ok := obj.(*types.PkgName); ok {
			return pn.Imported().Path(), true
		}
		return "", false // a variable or field shadowing the name
	}
	path, ok := s.imports[id.Name]
	return path, ok
}

func (s *scanner) selector(n *ast.SelectorExpr) {
	path, ok := s.pkgOf(n.X)
	if !ok {
		return
	}
	switch {
	case path == "time" && forbiddenTime[n.Sel.Name]:
		s.report("time", n, "time.%s: node logic reads time only through Env.Clock", n.Sel.Name)
	case path == "sync":
		s.report("sync", n, "sync.%s: node logic is single-threaded", n.Sel.Name)
	}
}

// block checks the map-order rule for the range statements of one
// statement list, where "followed by a sort" can be seen.
func (s *scanner) block(list []ast.Stmt) {
	for i, st := range list {
		rs, ok := st.(*ast.RangeStmt)
		if !ok || !s.isMap(rs.X) {
			continue
		}
		appendAt, output := s.leaks(rs.Body)
		if output != nil {
			s.report("maporder", output, "output written inside a range over a map: Go's map order would reach it; iterate sorted keys")
		}
		if appendAt != nil && !sortedAfter(list[i+1:], s) {
			s.report("maporder", appendAt, "append inside a range over a map with no sort after the loop: the slice's order is Go's map order")
		}
	}
}

func (s *scanner) isMap(x ast.Expr) bool {
	tv, ok := s.info.Types[x]
	if !ok || tv.Type == nil {
		return false
	}
	_, isMap := tv.Type.Underlying().(*types.Map)
	return isMap
}

var outputCalls = map[string]bool{
	"Write": true, "WriteString": true, "WriteByte": true, "WriteRune": true, "Append": true, "Send": true,
	"Print": true, "Printf": true, "Println": true, "Fprint": true, "Fprintf": true, "Fprintln": true,
	"Encode": true, "Logf": true, "logf": true,
}

// leaks finds, in a loop body, the first append and the first write of
// output.
func (s *scanner) leaks(body *ast.BlockStmt) (appendAt, output ast.Node) {
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			switch fn := n.Fun.(type) {
			case *ast.Ident:
				if b, ok := s.info.Uses[fn].(*types.Builtin); ok && b.Name() == "append" || s.info.Uses[fn] == nil && fn.Name == "append" {
					if appendAt == nil {
						appendAt = n
					}
				}
				if outputCalls[fn.Name] && output == nil {
					output = n
				}
			case *ast.SelectorExpr:
				if outputCalls[fn.Sel.Name] && output == nil {
					output = n
				}
			}
			if tv, ok := s.info.Types[n.Fun]; ok && tv.Type != nil && output == nil {
				if named, ok := tv.Type.(*types.Named); ok && named.Obj().Name() == "ReplyFunc" {
					output = n
				}
			}
		case *ast.AssignStmt:
			if n.Tok == token.ADD_ASSIGN && len(n.Lhs) == 1 && output == nil {
				if tv, ok := s.info.Types[n.Lhs[0]]; ok && tv.Type != nil {
					if b, ok := tv.Type.Underlying().(*types.Basic); ok && b.Info()&types.IsString != 0 {
						output = n
					}
				}
			}
		}
		return true
	})
	return appendAt, output
}

// sortedAfter reports whether a statement after the loop sorts something:
// sort.X(...) or slices.Sort*(...).
func sortedAfter(rest []ast.Stmt, s *scanner) bool {
	found := false
	for _, st := range rest {
		ast.Inspect(st, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return !found
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
				if path, ok := s.pkgOf(sel.X); ok && (path == "sort" || path == "slices" && strings.HasPrefix(sel.Sel.Name, "Sort")) {
					found = true
				}
			}
			return !found
		})
	}
	return found
}

// TestNodeLogicIsDeterministic scans the node-logic packages that exist.
func TestNodeLogicIsDeterministic(t *testing.T) {
	scanned := 0
	for _, pkg := range nodeLogic {
		dir := filepath.Join("..", pkg)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		scanned++
		res, err := scanDir(dir, "dkv/"+pkg)
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		for _, v := range res.violations {
			t.Errorf("%s", v)
		}
		if len(res.typeErrs) > 0 {
			t.Logf("%s does not type-check (%v); the map-order rule was checked only where types were known", pkg, res.typeErrs[0])
		}
	}
	if scanned == 0 {
		t.Fatal("no node-logic package found: is the test running from checks/?")
	}
}

// TestScannerCatchesEachRule shows the scan itself works: one small bad
// snippet per rule, and clean code that must pass.
func TestScannerCatchesEachRule(t *testing.T) {
	cases := []struct {
		rule string
		src  string
	}{
		{"go", `func f() { go func() {}() }`},
		{"chan", `func f() { c := make(chan int, 1); c <- 1 }`},
		{"chan", `func f(c chan int) int { return <-c }`},
		{"chan", `func f(c <-chan int) { select { case <-c: } }`},
		{"sync", `import "sync"; var mu sync.Mutex`},
		{"sync", `import "sync"; func f() { var wg sync.WaitGroup; wg.Wait() }`},
		{"sync", `import "sync"; type T struct { mu sync.RWMutex }`},
		{"sync", `import "sync/atomic"; var n atomic.Int64`},
		{"io", `import "os"; func f() { os.Exit(1) }`},
		{"io", `import "net"; var _ net.Conn`},
		{"io", `import "syscall"; var _ = syscall.Getpid`},
		{"time", `import "time"; func f() int64 { return time.Now().UnixNano() }`},
		{"time", `import "time"; func f() { time.Sleep(1) }`},
		{"time", `import "time"; func f() { <-time.After(1) }`},
		{"time", `import "time"; func f() { time.NewTimer(1) }`},
		{"time", `import "time"; func f() { time.NewTicker(1) }`},
		{"time", `import "time"; func f() { time.Tick(1) }`},
		{"time", `import "time"; func f(t time.Time) time.Duration { return time.Since(t) + time.Until(t) }`},
		{"rand", `import "math/rand"; func f() int { return rand.Int() }`},
		{"rand", `import "math/rand/v2"; func f() int { return rand.IntN(3) }`},
		{"rand", `import mr "math/rand/v2"; var _ = mr.NewPCG(1, 2)`},
		{"maporder", `func f(m map[string]int) []string { var ks []string; for k := range m { ks = append(ks, k) }; return ks }`},
		{"maporder", `import "fmt"; func f(m map[string]int) { for k, v := range m { fmt.Printf("%s=%d", k, v) } }`},
		{"maporder", `type S struct{ m map[int]string }; type W interface{ Write([]byte) (int, error) }
			func (s *S) f(w W) { for _, v := range s.m { w.Write([]byte(v)) } }`},
		{"maporder", `func f(m map[string]int) string { s := ""; for k := range m { s += k }; return s }`},
	}
	for _, c := range cases {
		src := "package p\n" + c.src + "\n"
		res, err := scanFiles("p", map[string][]byte{"p.go": []byte(src)})
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		hit := false
		for _, v := range res.violations {
			hit = hit || v.rule == c.rule
		}
		if !hit {
			t.Errorf("rule %s missed in:\n%s\n(found %v)", c.rule, c.src, res.violations)
		}
	}

	clean := []string{
		// Sorted keys: the pattern the rules ask for.
		`import "sort"; func f(m map[string]int) []string { var ks []string; for k := range m { ks = append(ks, k) }; sort.Strings(ks); return ks }`,
		`import "slices"; func f(m map[string]int) []string { var ks []string; for k := range m { ks = append(ks, k) }; slices.Sort(ks); return ks }`,
		// Order-free aggregation over a map.
		`func f(m map[string]int) int { n := 0; for _, v := range m { n += v }; return n }`,
		// Appending while ranging over a slice is fine.
		`func f(xs []int) []int { var out []int; for _, x := range xs { out = append(out, x) }; return out }`,
		// time.Duration and constants are not clocks.
		`import "time"; const d = 3 * time.Millisecond; func f(x time.Duration) time.Duration { return x + d }`,
		// A local variable named like a package is not the package.
		`func f() int { time := 3; return time }`,
	}
	for _, src := range clean {
		res, err := scanFiles("p", map[string][]byte{"p.go": []byte("package p\n" + src + "\n")})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if len(res.violations) > 0 {
			t.Errorf("clean code flagged: %v\n%s", res.violations, src)
		}
		if len(res.typeErrs) > 0 {
			t.Errorf("clean snippet does not type-check: %v\n%s", res.typeErrs, src)
		}
	}
}
