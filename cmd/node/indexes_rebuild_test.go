package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"dkv/client"
	"dkv/core"
)

// A restart with more values than --index-inline-values serves at once and
// rebuilds its indexes while it serves: a get is answered, a search is
// refused as unavailable with the rebuild's progress (which status shows
// too), writes made during the rebuild, before and after the walk's
// position, are found once it is done, and the log says when it began and
// ended.
func TestIndexesRebuiltWhileServing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"--enable-indexes", "--index-inline-values", "100"}
	s := start(t, dir, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.Dial(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	// 30,000 values of about 1 KB: about a second of indexing on one
	// core, so the first requests after the restart meet the rebuild;
	// under the race detector, which indexes ten times slower, 3,000.
	values, batch := 30_000, 1_000
	if raceEnabled {
		values = 3_000
	}
	text := strings.Repeat("the quiet river runs past the old mill and the green meadow ", 16)
	for b := 0; b < values; b += batch {
		items := make([]client.KV, 0, batch)
		for i := b; i < b+batch; i++ {
			items = append(items, client.KV{Key: fmt.Sprintf("doc%05d", i), Value: fmt.Sprintf("%s number%d", text, i)})
		}
		if err := c.BulkSet(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	s.signal(syscall.SIGKILL)
	s.exitCode()

	s = start(t, dir, args...)
	c, err = client.Dial(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.Get(ctx, "doc00007"); err != nil || !strings.HasSuffix(v, "number7") {
		t.Fatalf("a get during the rebuild: %q, %v", v, err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Indexes == nil || st.Indexes.Rebuild == nil || st.Indexes.Rebuild.Total != values || st.Indexes.Rebuild.Indexed >= values {
		t.Fatalf("status at once after the restart shows no rebuild under way: %+v", st.Indexes)
	}
	_, err = c.Search(ctx, "number7")
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != core.CodeUnavailable || !strings.Contains(se.Message, "being rebuilt") {
		t.Fatalf("a search during the rebuild: %v, want unavailable naming the rebuild", err)
	}
	// Writes during the rebuild: one before any position the walk has
	// reached by now (it has passed "a…" at once) and one past them all.
	last := fmt.Sprintf("doc%05d", values-1)
	for _, k := range []string{"aaa", "zzz", last} {
		if err := c.Set(ctx, k, "a saxophone solo "+k); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(ctx, "doc00001"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(90 * time.Second); st.Indexes.Rebuild != nil; {
		if time.Now().After(deadline) {
			t.Fatalf("the rebuild is not done after 90 s: %+v", st.Indexes.Rebuild)
		}
		time.Sleep(20 * time.Millisecond)
		if st, err = c.Status(ctx); err != nil {
			t.Fatal(err)
		}
	}
	hits, err := c.Search(ctx, "saxophone", client.Limit(10))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(hitKeys(hits)), fmt.Sprintf("[aaa %s zzz]", last); got != want {
		t.Errorf("saxophone: %s, want the three values written during the rebuild", got)
	}
	for _, q := range []struct{ query, want string }{{"number7", "[doc00007]"}, {"number1", "[]"}, {fmt.Sprint("number", values-1), "[]"}} {
		hits, err := c.Search(ctx, q.query)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(hitKeys(hits)); got != q.want {
			t.Errorf("%s: %s, want %s", q.query, got, q.want)
		}
	}
	if st.Indexes.Docs != values+2-1 {
		t.Errorf("the indexes hold %d values, want %d", st.Indexes.Docs, values+1)
	}
	log := s.log()
	if strings.Count(log, "serving") != 1 {
		t.Errorf("the word serving, which scripts wait for, is in the log more than once:\n%s", log)
	}
	for _, want := range []string{fmt.Sprintf("indexes: rebuilding from %d values in steps", values), "values indexed in"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}
}

func hitKeys(hits []client.Hit) []string {
	keys := make([]string, 0, len(hits))
	for _, h := range hits {
		keys = append(keys, h.Key)
	}
	return keys
}

// A search waits for the index updates queued before it (here, those of a
// bulk_set of 4,000 values of 1 KB, a tenth of a second of indexing or
// more), but the node's loop does not wait with it: a get sent after the
// search, on another connection, is answered while the search still
// waits, and the search then finds the values. (When the loop waited for
// the search, the get's answer came after the search's.)
func TestSearchDoesNotHoldTheLoop(t *testing.T) {
	s := start(t, filepath.Join(t.TempDir(), "data"), "--enable-indexes")
	dial := func() (net.Conn, *bufio.Reader) {
		nc, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return nc, bufio.NewReaderSize(nc, 1<<16)
	}
	read := func(nc net.Conn, r *bufio.Reader, wait time.Duration) (*core.Response, error) {
		nc.SetReadDeadline(time.Now().Add(wait))
		line, err := r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		var resp core.Response
		if err := json.Unmarshal(line, &resp); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		return &resp, nil
	}
	a, ra := dial()
	b, rb := dial()
	words := strings.Fields("amber basalt cedar delta ember fjord garnet harbor indigo juniper kestrel lagoon meadow nectar orchid prairie quartz raven sierra tundra umber violet willow xenon yarrow zephyr")
	items := make([]map[string]string, 4000)
	for i := range items {
		var v strings.Builder
		for j := 0; v.Len() < 1000; j++ {
			v.WriteString(words[(i*7+j*j)%len(words)])
			fmt.Fprintf(&v, "%d ", (i+j)%97)
		}
		items[i] = map[string]string{"key": fmt.Sprintf("k%04d", i), "value": v.String() + "saxophone"}
	}
	line, _ := json.Marshal(map[string]any{"op": "bulk_set", "items": items})
	if _, err := a.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	if resp, err := read(a, ra, time.Minute); err != nil || !resp.OK {
		t.Fatalf("bulk_set: %+v, %v", resp, err)
	}
	if _, err := a.Write([]byte(`{"op":"search","query":"saxophone","limit":1000}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte(`{"op":"get","key":"k0001"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if resp, err := read(b, rb, time.Minute); err != nil || !resp.OK {
		t.Fatalf("get: %+v, %v", resp, err)
	}
	if resp, err := read(a, ra, time.Millisecond); err == nil {
		t.Fatalf("the search was answered (%d hits) before the get sent after it: the loop waited for it", len(resp.Hits))
	}
	resp, err := read(a, ra, time.Minute)
	if err != nil || !resp.OK || len(resp.Hits) != 1000 { // --max-hits
		t.Fatalf("search: %v; %d hits, want 1000", err, len(resp.Hits))
	}
}
