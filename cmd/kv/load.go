package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/sync/errgroup"

	"dkv/client"
	"dkv/core"
	"dkv/internal/progress"
)

// Limits of load.
const (
	// loadBatchMax is the most items --batch may put in one bulk_set: the
	// server's default --max-bulk-entries.
	loadBatchMax = 10_000
	// loadBatchBytesMax ends a batch early once its keys and values, as
	// JSON strings, reach it: well under the server's default 16 MiB
	// request line.
	loadBatchBytesMax = 4 << 20
	// loadLineBytesMax bounds one line of the file: a key and a value at
	// the server's default limits, escaped, fit many times over.
	loadLineBytesMax = 16 << 20
	// loadTTLSetsInFlight bounds the sets of keys with deadlines a load has
	// in flight at once (a bulk_set takes no ttl_ms): the server commits
	// them in shared batches, as it does a pipeline's.
	loadTTLSetsInFlight = 32
)

// parseLoad is the load command: the lines scan prints, stored back in
// bulk_sets.
func parseLoad(args []string) (operation, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	batch := fs.Int("batch", 1000, "")
	if err := fs.Parse(args); err != nil {
		return nil, usagef("load: %v", err)
	}
	if fs.NArg() != 1 {
		return nil, usagef("load takes one FILE (- for standard input): kv load [--batch N] FILE")
	}
	if *batch < 1 || *batch > loadBatchMax {
		return nil, usagef("--batch must be in 1..%d, got %d", loadBatchMax, *batch)
	}
	path := fs.Arg(0)
	return func(ctx context.Context, c store, w io.Writer) error {
		in, total := io.Reader(os.Stdin), int64(0)
		if path != "-" {
			f, err := os.Open(path)
			if err != nil {
				return usagef("load: %v", err)
			}
			defer f.Close()
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				total = st.Size()
			}
			in = f
		}
		var st loadStats
		start := time.Now()
		bar := progress.Start(os.Stderr, progress.Spec{
			Title: "loading " + path, Total: total, Unit: "bytes", Count: st.read.Load,
			Detail: func() string {
				return fmt.Sprintf("%d keys, %.0f keys/s", st.loaded.Load(), float64(st.loaded.Load())/time.Since(start).Seconds())
			},
		})
		n, err := load(ctx, c, in, *batch, &st)
		bar.Finish()
		if ie := (interruptedError{}); errors.As(err, &ie) {
			ie.path = path
			return ie
		}
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("loaded %d keys", n)
		if e, x := st.expiring.Load(), st.expired.Load(); e > 0 || x > 0 {
			msg += fmt.Sprintf(" (%d with deadlines; %d skipped, their deadlines passed)", e, x)
		}
		_, err = fmt.Fprintln(w, msg)
		return err
	}, nil
}

// loadStats counts a load's work, for its progress line and its summary.
type loadStats struct {
	read     atomic.Int64 // bytes of the file
	loaded   atomic.Int64 // keys stored
	expiring atomic.Int64 // of those, keys set with a deadline
	expired  atomic.Int64 // lines skipped: their deadline had passed
}

// expiringKV is a line with a deadline: it is set on its own, with the
// time left (a bulk_set's items take no ttl_ms).
type expiringKV struct {
	kv       client.KV
	deadline time.Time
}

// load stores every line of in, batch items to a bulk_set and each key
// with a deadline in a set of its own, counting into st; it returns how
// many keys it stored.
//
// ctx ends on Ctrl-C (run's signal context): load then reads no further
// line, stores the lines it has read, and returns an interruptedError
// naming the line to go on from. Its requests are not cancelled with it,
// so that the last batch is stored or refused, not left unknown.
func load(ctx context.Context, c store, in io.Reader, batch int, st *loadStats) (int64, error) {
	interrupt := ctx
	ctx = context.WithoutCancel(ctx)
	br := bufio.NewReaderSize(in, 64<<10)
	var items []client.KV
	var expiring []expiringKV
	// keys of the lines since the last flush: a key met again is flushed
	// first, so that the file's later line wins, as it would in one
	// bulk_set, though the two may go apart (a bulk_set, then sets).
	keys := map[string]bool{}
	batchBytes, line, firstLine := 0, 0, 1
	flush := func() error {
		if len(items) == 0 && len(expiring) == 0 {
			return nil
		}
		if len(items) > 0 {
			if err := bulkSet(ctx, c, items, st); err != nil {
				// A bulk_set refused as too large was stored in halves, up
				// to the item that failed: some of these lines may be
				// stored (it said none, in a count that held them).
				return fmt.Errorf("lines %d..%d: %w; the keys of the lines before them are stored, and perhaps some of these lines' (%d keys stored in all)", firstLine, line, err, st.loaded.Load())
			}
		}
		if err := setExpiring(ctx, c, expiring, st); err != nil {
			return fmt.Errorf("lines %d..%d: %w; the keys of the lines before them are stored, and of these lines those without a deadline and perhaps some with one (%d keys stored in all)", firstLine, line, err, st.loaded.Load())
		}
		items, expiring, batchBytes, firstLine = items[:0], expiring[:0], 0, line+1
		clear(keys)
		return nil
	}
	interrupted := func() error {
		if err := flush(); err != nil {
			return err
		}
		return interruptedError{lines: line, keys: st.loaded.Load()}
	}
	for {
		if interrupt.Err() != nil {
			return st.loaded.Load(), interrupted()
		}
		raw, err := readLoadLine(br)
		if interrupt.Err() != nil {
			// Ctrl-C came while the line was read: it is not stored.
			// And an input cut short by the same Ctrl-C (zcat dump.gz |
			// kv load -) is not a whole file loaded.
			return st.loaded.Load(), interrupted()
		}
		if err == io.EOF {
			break
		}
		line++
		st.read.Add(int64(len(raw)))
		if err != nil {
			if ferr := flush(); ferr != nil {
				return st.loaded.Load(), ferr
			}
			return st.loaded.Load(), fmt.Errorf("line %d: %w; the %d keys of the lines before it are stored", line, err, st.loaded.Load())
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			// A blank line, of a file whose lines end "\r\n" too (one
			// edited on Windows): it stopped the load as bad JSON.
			continue
		}
		var kv struct {
			Key       *string `json:"key"`
			Value     *string `json:"value"`
			ExpiresAt *string `json:"expires_at"`
		}
		err = json.Unmarshal(raw, &kv, json.RejectUnknownMembers(true))
		if err != nil || kv.Key == nil || kv.Value == nil || *kv.Key == "" {
			err = badLoadLine(err, kv.Key, kv.Value)
		}
		var deadline time.Time
		if err == nil && kv.ExpiresAt != nil {
			deadline, err = time.Parse(time.RFC3339Nano, *kv.ExpiresAt)
			if err != nil {
				err = fmt.Errorf(`"expires_at" is not an RFC 3339 time such as %q: %s`, expiresAtLayout, loadLineForm)
			}
		}
		if err != nil {
			// What came before it is stored: a load can go on from here.
			if ferr := flush(); ferr != nil {
				return st.loaded.Load(), ferr
			}
			return st.loaded.Load(), fmt.Errorf("line %d: %v; the %d keys of the lines before it are stored", line, err, st.loaded.Load())
		}
		if keys[*kv.Key] {
			if err := flush(); err != nil {
				return st.loaded.Load(), err
			}
		}
		keys[*kv.Key] = true
		item := client.KV{Key: *kv.Key, Value: *kv.Value}
		if kv.ExpiresAt != nil {
			expiring = append(expiring, expiringKV{item, deadline})
		} else {
			items = append(items, item)
		}
		batchBytes += core.QuotedBytesMax(*kv.Key) + core.QuotedBytesMax(*kv.Value)
		if len(items)+len(expiring) == batch || batchBytes >= loadBatchBytesMax {
			if err := flush(); err != nil {
				return st.loaded.Load(), err
			}
		}
	}
	if err := flush(); err != nil {
		return st.loaded.Load(), err
	}
	return st.loaded.Load(), nil
}

// interruptedError is a load stopped by Ctrl-C: the lines up to and
// including lines are stored, and none after them.
type interruptedError struct {
	lines int    // lines read and stored (blank ones and expired ones counted)
	keys  int64  // keys stored
	path  string // the FILE load was given
	// load is the command line that goes on from standard input: kv with
	// the flags this one was given, "load", its flags, "-".
	load string
}

func (e interruptedError) Error() string {
	msg := fmt.Sprintf("interrupted: lines 1..%d are stored (%d keys), none after them", e.lines, e.keys)
	if e.path == "-" {
		return msg + fmt.Sprintf("; to go on, load the input's lines from line %d", e.lines+1)
	}
	return msg + fmt.Sprintf("; to go on: tail -n +%d %s | %s", e.lines+1, shellQuote(e.path), e.load)
}

// loadCommand is the command line of a load of standard input to the
// server that global (kv's flags, as given) names, with loadFlags (the
// load's own flags). The hint said "kv load -", without the flags that
// named the server: copied as it stood, it loaded the rest of the dump
// into the default server, 127.0.0.1:9999, perhaps the one the dump was
// taken from, over its newer values (found by review).
func loadCommand(global, loadFlags []string) string {
	words := []string{"kv"}
	for _, a := range slices.Concat(global, []string{"load"}, loadFlags, []string{"-"}) {
		words = append(words, shellQuote(a))
	}
	return strings.Join(words, " ")
}

// shellQuote quotes s for a POSIX shell where it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:,=@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// itemTooLargeError is one key and value that the server refuses as too
// large (--max-key-bytes, --max-value-bytes, --max-request-bytes).
type itemTooLargeError struct {
	key string
	err error
}

func (e itemTooLargeError) Error() string {
	k := e.key
	if len(k) > 64 {
		k = k[:64] + "…"
	}
	return fmt.Sprintf("key %q: %v", k, e.err)
}
func (e itemTooLargeError) Unwrap() error { return e.err }

// bulkSet stores items in one bulk_set, or, where the server refuses it as
// too large (its --max-bulk-entries below --batch, or the line over its
// --max-request-bytes), in two halves, each on the same terms: a refused
// bulk_set wrote nothing, and the file's order holds, since its keys are
// distinct (load flushes before a key met again). A single item refused
// (a value over --max-value-bytes) is the error.
func bulkSet(ctx context.Context, c store, items []client.KV, st *loadStats) error {
	err := c.BulkSet(ctx, items)
	var se *client.ServerError
	if errors.As(err, &se) && se.Code == core.CodeTooLarge && len(items) > 1 {
		half := len(items) / 2
		if err := bulkSet(ctx, c, items[:half], st); err != nil {
			return err
		}
		return bulkSet(ctx, c, items[half:], st)
	}
	if errors.As(err, &se) && se.Code == core.CodeTooLarge {
		// One item over the server's limits: named, since its lines'
		// range may be a thousand long, and no --batch makes it fit
		// (found by review).
		return itemTooLargeError{key: items[0].Key, err: err}
	}
	if err == nil {
		st.loaded.Add(int64(len(items)))
	}
	return err
}

// setExpiring sets each key of items with the time left until its
// deadline, loadTTLSetsInFlight at a time; a key whose deadline has passed
// is skipped (counted in st.expired), since a set takes no time left below
// a millisecond. The first error is returned once the sets in flight end.
func setExpiring(ctx context.Context, c store, items []expiringKV, st *loadStats) error {
	if len(items) == 0 {
		return nil
	}
	for _, it := range items {
		if time.Until(it.deadline) > core.TTLMsMax*time.Millisecond {
			return fmt.Errorf("key %q: expires_at %s is more than ten years away", it.kv.Key, it.deadline.Format(expiresAtLayout))
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(loadTTLSetsInFlight)
	for _, it := range items {
		ttl := time.Until(it.deadline)
		if ttl < time.Millisecond {
			st.expired.Add(1)
			continue
		}
		g.Go(func() error {
			if err := c.SetWithTTL(gctx, it.kv.Key, it.kv.Value, ttl); err != nil {
				return fmt.Errorf("key %q: %w", it.kv.Key, err)
			}
			st.loaded.Add(1)
			st.expiring.Add(1)
			return nil
		})
	}
	return g.Wait()
}

// loadLineForm ends every complaint about a line: what a line must be.
const loadLineForm = `a line is {"key":…,"value":…}, both strings, the key not empty, and "expires_at" (an RFC 3339 time) for a key that expires`

// badLoadLine says what is wrong with a line, in the file's terms: the
// decoder's own errors name Go types ("Go struct { Key *string ...}"),
// which mean nothing to whoever wrote the file.
func badLoadLine(err error, key, value *string) error {
	var sem *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &sem) && errors.Is(err, json.ErrUnknownName):
		return fmt.Errorf("unknown field %q: %s", sem.JSONPointer.LastToken(), loadLineForm)
	case errors.As(err, &sem) && sem.JSONPointer == "":
		return fmt.Errorf("a JSON %s, not an object: %s", kindName(sem.JSONKind), loadLineForm)
	case errors.As(err, &sem):
		return fmt.Errorf("%q is a JSON %s, not a string: %s", sem.JSONPointer.LastToken(), kindName(sem.JSONKind), loadLineForm)
	case errors.As(err, &syn):
		return fmt.Errorf("not valid JSON (%v, at byte %d): %s", syn.Err, syn.ByteOffset+1, loadLineForm)
	case err != nil:
		return fmt.Errorf("%v: %s", err, loadLineForm)
	case key == nil:
		return fmt.Errorf(`"key" is missing or null: %s`, loadLineForm)
	case value == nil:
		return fmt.Errorf(`"value" is missing or null: %s`, loadLineForm)
	}
	return fmt.Errorf(`an empty "key": %s`, loadLineForm)
}

// kindName names a JSON kind as the JSON spec does.
func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case '[':
		return "array"
	case '{':
		return "object"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "value"
}

// readLoadLine reads one line, its newline included, of at most
// loadLineBytesMax bytes; io.EOF once there is nothing left.
func readLoadLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > loadLineBytesMax {
			return nil, fmt.Errorf("the line is over %d bytes", loadLineBytesMax)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(line) > 0:
			return line, nil
		case err != nil:
			return nil, err
		}
		return line, nil
	}
}
