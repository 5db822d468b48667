package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

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
		var read, loaded atomic.Int64
		start := time.Now()
		bar := progress.Start(os.Stderr, progress.Spec{
			Title: "loading " + path, Total: total, Unit: "bytes", Count: read.Load,
			Detail: func() string {
				return fmt.Sprintf("%d keys, %.0f keys/s", loaded.Load(), float64(loaded.Load())/time.Since(start).Seconds())
			},
		})
		n, err := load(ctx, c, in, *batch, &read, &loaded)
		bar.Finish()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "loaded %d keys\n", n)
		return err
	}, nil
}

// load stores every line of in, batch items to a bulk_set, counting the
// bytes read and the keys stored; it returns how many keys it stored.
func load(ctx context.Context, c store, in io.Reader, batch int, read, loaded *atomic.Int64) (int64, error) {
	br := bufio.NewReaderSize(in, 64<<10)
	var items []client.KV
	bytes, line, firstLine := 0, 0, 1
	flush := func() error {
		if len(items) == 0 {
			return nil
		}
		if err := c.BulkSet(ctx, items); err != nil {
			return fmt.Errorf("lines %d..%d: %w; the %d keys of the lines before them are stored", firstLine, line, err, loaded.Load())
		}
		loaded.Add(int64(len(items)))
		items, bytes, firstLine = items[:0], 0, line+1
		return nil
	}
	for {
		raw, err := readLoadLine(br)
		if err == io.EOF {
			break
		}
		line++
		read.Add(int64(len(raw)))
		if err != nil {
			if ferr := flush(); ferr != nil {
				return loaded.Load(), ferr
			}
			return loaded.Load(), fmt.Errorf("line %d: %w; the %d keys of the lines before it are stored", line, err, loaded.Load())
		}
		if len(raw) == 0 || (len(raw) == 1 && raw[0] == '\n') {
			continue
		}
		var kv struct {
			Key   *string `json:"key"`
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(raw, &kv, json.RejectUnknownMembers(true)); err != nil || kv.Key == nil || kv.Value == nil || *kv.Key == "" {
			err = badLoadLine(err, kv.Key, kv.Value)
			// What came before it is stored: a load can go on from here.
			if ferr := flush(); ferr != nil {
				return loaded.Load(), ferr
			}
			return loaded.Load(), fmt.Errorf("line %d: %v; the %d keys of the lines before it are stored", line, err, loaded.Load())
		}
		items = append(items, client.KV{Key: *kv.Key, Value: *kv.Value})
		bytes += core.QuotedBytesMax(*kv.Key) + core.QuotedBytesMax(*kv.Value)
		if len(items) == batch || bytes >= loadBatchBytesMax {
			if err := flush(); err != nil {
				return loaded.Load(), err
			}
		}
	}
	if err := flush(); err != nil {
		return loaded.Load(), err
	}
	return loaded.Load(), nil
}

// loadLineForm ends every complaint about a line: what a line must be.
const loadLineForm = `a line is {"key":…,"value":…}, both strings, the key not empty`

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
