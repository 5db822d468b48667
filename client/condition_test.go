package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"dkv/core"
	"dkv/internal/servetest"
	"dkv/realnet"
)

// The conditional writes against a real single node: each applies exactly
// when its condition holds, and a refusal is false with a nil error.
func TestConditionalWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dialT(t, servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig()))
	step := func(what string, ok bool, err error, want bool) {
		t.Helper()
		if err != nil || ok != want {
			t.Fatalf("%s: %v, %v; want %v, nil", what, ok, err, want)
		}
	}
	ok, err := c.SetIfExists(ctx, "k", "v0")
	step("SetIfExists of a missing key", ok, err, false)
	ok, err = c.SetIfAbsent(ctx, "k", "v1")
	step("SetIfAbsent of a missing key", ok, err, true)
	ok, err = c.SetIfAbsent(ctx, "k", "v2")
	step("SetIfAbsent of a key that exists", ok, err, false)
	ok, err = c.SetIfExists(ctx, "k", "v2")
	step("SetIfExists of a key that exists", ok, err, true)
	ok, err = c.CompareAndSwap(ctx, "k", "v1", "v3")
	step("CompareAndSwap from a replaced value", ok, err, false)
	ok, err = c.CompareAndSwap(ctx, "k", "v2", "v3")
	step("CompareAndSwap from the value", ok, err, true)
	ok, err = c.CompareAndDelete(ctx, "k", "v2")
	step("CompareAndDelete of another value", ok, err, false)
	if v, err := c.Get(ctx, "k"); err != nil || v != "v3" {
		t.Fatalf("get: %q, %v; want v3", v, err)
	}
	ok, err = c.CompareAndDelete(ctx, "k", "v3")
	step("CompareAndDelete of the value", ok, err, true)
	if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after CompareAndDelete: %v; want ErrNotFound", err)
	}

	// Do gives the refusal itself: the error and the key's value.
	old := "nope"
	c.Set(ctx, "k", "now")
	resp, err := c.Do(ctx, &core.Request{Op: core.OpSet, Key: "k", Value: &old, IfValue: &old})
	if !errors.Is(err, ErrConditionFailed) || resp == nil || resp.Value == nil || *resp.Value != "now" {
		t.Fatalf("Do: %+v, %v; want condition_failed with value \"now\"", resp, err)
	}
}

// Of many clients that race to create one key, exactly one succeeds, and
// the key holds its value.
func TestSetIfAbsentRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	const racers = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
	)
	for i := range racers {
		c := dialT(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := string(rune('a' + i))
			ok, err := c.SetIfAbsent(ctx, "lock", me)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				winners = append(winners, me)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d clients created the key: %v", len(winners), winners)
	}
	if v, err := dialT(t, addr).Get(ctx, "lock"); err != nil || v != winners[0] {
		t.Fatalf("the key holds %q (%v); the winner wrote %q", v, err, winners[0])
	}
}

// A mesh refuses conditional writes with an error, not a false.
func TestConditionalWritesRefusedByAMesh(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dialT(t, startMeshNode(t))
	ok, err := c.SetIfAbsent(ctx, "k", "v")
	var se *ServerError
	if ok || !errors.As(err, &se) || se.Code != core.CodeNotImplemented {
		t.Fatalf("SetIfAbsent on a mesh: %v, %v; want not_implemented", ok, err)
	}
	if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused write left something: %v", err)
	}
}

// A cluster write refused for its condition after an attempt of unknown
// outcome is a certain refusal: had the earlier attempt applied, the
// session would have answered the retry as its duplicate.
func TestClusterConditionFailedIsCertain(t *testing.T) {
	fc := newFakeCluster(t, 1)
	var mu sync.Mutex
	attempts := 0
	fc.serve(func(_ int, req *core.Request) reply {
		mu.Lock()
		defer mu.Unlock()
		if req.Op != core.OpSet {
			return okReply(req)
		}
		attempts++
		if attempts%2 == 1 {
			return errReply(core.CodeOutcomeUnknown)
		}
		return errReply(core.CodeConditionFailed)
	})
	c := dialClusterT(t, fc.addrs)
	ok, err := c.SetIfAbsent(ctxT(t), "k", "v")
	if ok || err != nil {
		t.Fatalf("SetIfAbsent: %v, %v; want false, nil", ok, err)
	}
	_, err = c.Do(ctxT(t), &core.Request{Op: core.OpSet, Key: "k", Value: new(string), IfAbsent: true})
	if !errors.Is(err, ErrConditionFailed) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Do: %v; want condition_failed alone, not an unknown outcome", err)
	}
	sets := fc.seen(core.OpSet)
	if len(sets) != 4 || sets[0].req.Seq != sets[1].req.Seq || !sets[1].req.IfAbsent {
		t.Fatalf("want one write sent twice with one seq and its condition, then another; got %d lines", len(sets))
	}
}
