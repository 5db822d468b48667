package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dkv/client"
	"dkv/core"
)

// These are the seed's tests, run against a real server process.

func dial(t *testing.T, addr string) *client.KVClient {
	t.Helper()
	c, err := client.Dial(addr, client.WithRequestTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func kill(s *server) {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

func TestSeedSetThenGet(t *testing.T) {
	c := dial(t, start(t, t.TempDir()).addr)
	ctx := context.Background()
	if err := c.Set(ctx, "hello", "world"); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "hello"); err != nil || v != "world" {
		t.Fatalf("get = %q, %v", v, err)
	}
}

func TestSeedSetDeleteGet(t *testing.T) {
	c := dial(t, start(t, t.TempDir()).addr)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "k"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
}

func TestSeedGetWithoutSet(t *testing.T) {
	c := dial(t, start(t, t.TempDir()).addr)
	if _, err := c.Get(context.Background(), "never-set"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get of a missing key: %v, want ErrNotFound", err)
	}
}

func TestSeedSetTwice(t *testing.T) {
	c := dial(t, start(t, t.TempDir()).addr)
	ctx := context.Background()
	for _, v := range []string{"first", "second"} {
		if err := c.Set(ctx, "k", v); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := c.Get(ctx, "k"); err != nil || v != "second" {
		t.Fatalf("get = %q, %v; want second", v, err)
	}
}

// Concurrent BulkSets of the same keys: afterwards every key holds the
// value of one single BulkSet, never a mix.
func TestSeedConcurrentBulkSetsDoNotMix(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	const writers, rounds, keys = 8, 40, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		goClient(&wg, s.addr, errs, func(c *client.KVClient) {
			for r := 0; r < rounds; r++ {
				items := make([]client.KV, keys)
				for i := range items {
					items[i] = client.KV{Key: fmt.Sprint("shared-", i), Value: fmt.Sprintf("writer%d-round%d", w, r)}
				}
				if err := c.BulkSet(context.Background(), items); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkOneBulkSet := func(addr string) {
		t.Helper()
		c := dial(t, addr)
		first, err := c.Get(context.Background(), "shared-0")
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < keys; i++ {
			if v, err := c.Get(context.Background(), fmt.Sprint("shared-", i)); err != nil || v != first {
				t.Fatalf("shared-%d = %q (%v) but shared-0 = %q: BulkSets mixed", i, v, err, first)
			}
		}
	}
	checkOneBulkSet(s.addr)
	// And the same after recovery from the log.
	kill(s)
	checkOneBulkSet(start(t, dir).addr)
}

// A BulkSet in flight when the server is SIGKILLed is, after restart, all
// there or not there at all.
func TestSeedBulkSetSIGKILLAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	const keys = 3000
	r := rand.New(rand.NewPCG(1, 1))
	prev := "" // the value every key held before this round ("" = absent)
	applied := 0
	for round := 0; round < 12; round++ {
		s := start(t, dir)
		nc, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		value := fmt.Sprintf("round%d-%s", round, strings.Repeat("x", 64))
		req := core.Request{Op: core.OpBulkSet}
		for i := 0; i < keys; i++ {
			req.Items = append(req.Items, core.KV{Key: fmt.Sprint("bulk-", i), Value: value})
		}
		line, _ := core.AppendRequest(nil, &req)
		go nc.Write(line)
		// Kill at a random moment around the write: before it arrives, while
		// it is decoded, logged or synced, or after the reply.
		time.Sleep(time.Duration(r.IntN(4000)) * time.Microsecond)
		kill(s)
		nc.Close()

		s = start(t, dir)
		c := dial(t, s.addr)
		got := map[string]int{}
		for i := 0; i < keys; i++ {
			v, err := c.Get(context.Background(), fmt.Sprint("bulk-", i))
			if errors.Is(err, client.ErrNotFound) {
				v, err = "", nil
			}
			if err != nil {
				t.Fatal(err)
			}
			got[v]++
		}
		if len(got) != 1 {
			t.Fatalf("round %d: BulkSet partly applied after SIGKILL: %d distinct values %v", round, len(got), keysOf(got))
		}
		now := keysOf(got)[0]
		if now != prev && now != value {
			t.Fatalf("round %d: keys hold %q, neither the previous %q nor the new %q", round, now, prev, value)
		}
		if now == value {
			applied++
		}
		prev = now
		kill(s)
	}
	t.Logf("the BulkSet survived the kill in %d of 12 rounds", applied)
}

func keysOf(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// debug_simulate_fail: many writes whose snapshots fail at random; after a
// restart every acknowledged write is there.
func TestSeedDebugSimulateFail(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	c := dial(t, s.addr)
	const writes = 300
	for i := 0; i < writes; i++ {
		req := &core.Request{Op: core.OpSet, Key: fmt.Sprint("k", i%100)}
		v := fmt.Sprint("v", i)
		req.Value = &v
		if i%10 == 0 {
			req.Op, req.Value = core.OpBulkSet, nil
			req.Items = []core.KV{{Key: fmt.Sprint("k", i%100), Value: v}, {Key: fmt.Sprint("b", i), Value: v}}
		}
		req.DebugSimulateFail = true
		resp, err := c.Do(context.Background(), req)
		if err != nil || !resp.OK {
			t.Fatalf("write %d: %+v %v", i, resp, err)
		}
	}
	if !strings.Contains(s.log(), "simulated failure") {
		t.Fatalf("no snapshot failure was simulated; log:\n%s", s.log())
	}
	kill(s)
	c = dial(t, start(t, dir).addr)
	for i := writes - 100; i < writes; i++ {
		if v, err := c.Get(context.Background(), fmt.Sprint("k", i%100)); err != nil || v != fmt.Sprint("v", i) {
			t.Fatalf("k%d = %q, %v; want v%d", i%100, v, err, i)
		}
	}
	for i := 0; i < writes; i += 10 {
		if v, err := c.Get(context.Background(), fmt.Sprint("b", i)); err != nil || v != fmt.Sprint("v", i) {
			t.Fatalf("b%d = %q, %v", i, v, err)
		}
	}
}

// Every kind of bad input gets its own error code, the server keeps serving,
// and the acknowledged data is intact afterwards, also after a crash.
func TestBadInputGetsSpecificErrorsAndLosesNothing(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, "--max-request-bytes", "65536", "--max-bulk-entries", "10",
		"--max-conns", "4", "--line-timeout", "300ms")
	c := dial(t, s.addr)
	if err := c.Set(context.Background(), "safe", "value"); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ line, code string }{
		{`{"op":"set","key":"k"`, core.CodeBadRequest},             // malformed JSON
		{`{"op":"frobnicate","key":"k"}`, core.CodeUnknownOp},      // unknown op
		{`{"op":"set","key":"k"}`, core.CodeBadRequest},            // missing value
		{`{"op":"set","key":5,"value":"v"}`, core.CodeBadRequest},  // wrong type
		{`{"op":"set","key":"","value":"v"}`, core.CodeBadRequest}, // empty key
		{`{"op":"set","key":"` + strings.Repeat("k", 4097) + `","value":"v"}`, core.CodeTooLarge},
		{`{"op":"set","key":"k","value":"` + strings.Repeat("v", 70000) + `"}`, core.CodeTooLarge}, // over the line limit
		{`{"op":"bulk_set","items":[` + strings.Repeat(`{"key":"a","value":"b"},`, 10) + `{"key":"a","value":"b"}]}`, core.CodeTooLarge},
		{`{"op":"get","key":"safe"}`, ""}, // and the connection still works
	}
	lines := make([]string, len(cases))
	for i, cs := range cases {
		lines[i] = cs.line
	}
	resps := roundTrip(t, s.addr, lines...)
	for i, cs := range cases {
		if code(resps[i]) != cs.code {
			t.Errorf("case %d (%.40s…): code %q (%+v), want %q", i, cs.line, code(resps[i]), resps[i].Error, cs.code)
		}
	}
	// A value over 1 MiB, on a server whose line limit admits it.
	big := start(t, t.TempDir())
	if err := dial(t, big.addr).Set(context.Background(), "k", strings.Repeat("v", 1<<20+1)); !isCode(err, core.CodeTooLarge) {
		t.Errorf("value over 1 MiB: %v, want too_large", err)
	}

	// A half line that stalls gets a timeout error and is closed.
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte(`{"op":"get","ke`))
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(nc).ReadString('\n')
	nc.Close()
	if !strings.Contains(line, `"timeout"`) {
		t.Errorf("stalled half line: got %q, want a timeout error", line)
	}

	// More connections than the limit: the extra one is told why. (Closed
	// connections linger briefly, so dial until one is refused.)
	var held []net.Conn
	refused := false
	for i := 0; i < 8 && !refused; i++ {
		nc, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, nc)
		nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		line, _ := bufio.NewReader(nc).ReadString('\n')
		refused = strings.Contains(line, core.CodeTooManyConns)
	}
	for _, nc := range held {
		nc.Close()
	}
	if !refused {
		t.Errorf("8 connections over a limit of 4: none was refused with %s; server log:\n%s", core.CodeTooManyConns, s.log())
	}

	// Still serving, nothing lost, also after a crash.
	if v, err := c.Get(context.Background(), "safe"); err != nil || v != "value" {
		t.Fatalf("after bad input: %q, %v", v, err)
	}
	kill(s)
	if v, err := dial(t, start(t, dir).addr).Get(context.Background(), "safe"); err != nil || v != "value" {
		t.Fatalf("after bad input and a crash: %q, %v", v, err)
	}
}

func isCode(err error, code string) bool {
	var se *client.ServerError
	return errors.As(err, &se) && se.Code == code
}

// smallTmpfs mounts a 2 MiB tmpfs for a test to fill, or skips the test
// where it cannot (mounting needs root); it is unmounted at the end.
func smallTmpfs(t *testing.T) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	return mnt
}

// A full disk fails the write that does not fit with disk_full, keeps the
// server up for reads and later writes, and loses nothing acknowledged. It
// needs a small filesystem: a tmpfs, which only root may mount.
func TestDiskFullOnARealFilesystem(t *testing.T) {
	mnt := smallTmpfs(t)
	s := start(t, mnt)
	c := dial(t, s.addr)
	ctx := context.Background()
	value := strings.Repeat("v", 64<<10)
	var acked []string
	var full error
	for i := 0; i < 100 && full == nil; i++ {
		key := fmt.Sprint("k", i)
		if err := c.Set(ctx, key, value); err != nil {
			full = err
			break
		}
		acked = append(acked, key)
	}
	if !isCode(full, core.CodeDiskFull) {
		t.Fatalf("writing 6.4 MB into 2 MB: got %v, want disk_full", full)
	}
	if len(acked) == 0 {
		t.Fatal("nothing fit before the disk was full")
	}
	// Reads go on, and small writes fit in what is left once the failed
	// write was cut back out of the log.
	for _, k := range acked {
		if v, err := c.Get(ctx, k); err != nil || v != value {
			t.Fatalf("%s after disk full: %v", k, err)
		}
	}
	if err := c.Set(ctx, "small", "fits"); err != nil {
		t.Fatalf("a small write after disk full: %v", err)
	}
	kill(s)
	c = dial(t, start(t, mnt).addr)
	for _, k := range append(acked, "small") {
		if _, err := c.Get(ctx, k); err != nil {
			t.Fatalf("%s after restart: %v", k, err)
		}
	}
	t.Logf("%d writes of 64 KiB acknowledged before disk_full", len(acked))
}

// A disk that fills while the node rolls its log to new segments and
// writes snapshots: a snapshot that does not fit is abandoned, its
// temporary file removed (it would hold the space a write needs), and the
// log stays whole; writes that do not fit get disk_full; nothing
// acknowledged is lost, across a SIGKILL on the full disk too; and once
// there is room the node writes, and snapshots, again. (Small segments and
// snapshot thresholds so that both happen within a 2 MiB tmpfs.)
func TestDiskFullDuringSnapshotsAndLogRolls(t *testing.T) {
	mnt := smallTmpfs(t)
	flags := []string{"--segment-bytes", "131072", "--snapshot-log-bytes", "262144"}
	s := start(t, mnt, flags...)
	c := dial(t, s.addr)
	ctx := context.Background()
	value := strings.Repeat("v", 8000)
	var acked []string
	full := 0
	for i := 0; i < 400; i++ {
		key := fmt.Sprint("k", i)
		err := c.Set(ctx, key, value)
		switch {
		case err == nil:
			acked = append(acked, key)
		case isCode(err, core.CodeDiskFull):
			full++
		default:
			t.Fatalf("write %d: %v, want ok or disk_full", i, err)
		}
	}
	if full == 0 || !strings.Contains(s.log(), "snapshot failed") {
		t.Fatalf("3.2 MB into 2 MiB: %d disk_full answers, and no snapshot failed; log:\n%s", full, s.log())
	}
	st := roundTrip(t, s.addr, `{"op":"status"}`)[0].Status
	if st == nil || st.WALSegments < 2 {
		t.Fatalf("status %+v: want the log rolled to several segments", st)
	}
	names, err := filepath.Glob(filepath.Join(mnt, "*.tmp"))
	if err != nil || len(names) > 0 {
		t.Errorf("an abandoned snapshot left %v behind on the full disk (%v)", names, err)
	}
	check := func(when string) {
		t.Helper()
		for _, k := range acked {
			if v, err := c.Get(ctx, k); err != nil || v != value {
				t.Fatalf("%s %s: %v", when, k, err)
			}
		}
	}
	check("on the full disk:")
	kill(s)
	s = start(t, mnt, flags...)
	c = dial(t, s.addr)
	check("after a SIGKILL on the full disk:")

	if out, err := exec.Command("mount", "-o", "remount,size=8m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	if err := c.Set(ctx, "room", "again"); err != nil {
		t.Fatalf("a write once there is room: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second) // failed snapshots retry after a growing pause
	for {
		st := roundTrip(t, s.addr, `{"op":"status"}`)[0].Status
		if st != nil && st.SnapshotIndex >= uint64(len(acked)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot of the %d writes once there is room: %+v; log:\n%s", len(acked), st, s.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	check("after a snapshot once there is room:")
	t.Logf("%d writes of 8000 bytes acknowledged, %d answered disk_full", len(acked), full)
}

// goClient runs f on a goroutine of wg with a client of its own to addr,
// closed after it; a failure to dial goes to errs.
func goClient(wg *sync.WaitGroup, addr string, errs chan<- error, f func(c *client.KVClient)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := client.Dial(addr)
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		f(c)
	}()
}
