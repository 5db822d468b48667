package main

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"dkv/core"
)

// The writes that keys that expire, counters and conditions make, through a
// real server process over JSON, each acknowledged and then the process
// SIGKILLed: after the restart every answer is the one acknowledged. A
// deadline an expire gave is kept and one a persist took is gone, an incr's
// sum stays with its key's deadline, a key that expired and was read as gone
// does not come back, and writes that replace a deadline (a set, a
// bulk_set) took it for good.
func TestSemanticsSurviveSIGKILL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := start(t, dir)
	const hour = 3_600_000
	resps := roundTrip(t, s.addr,
		`{"op":"set","key":"short","value":"v","ttl_ms":1}`,
		`{"op":"set","key":"expired","value":"v"}`,
		`{"op":"expire","key":"expired","ttl_ms":1}`,
		`{"op":"set","key":"kept","value":"v"}`,
		`{"op":"expire","key":"kept","ttl_ms":`+fmt.Sprint(hour)+`}`,
		`{"op":"set","key":"persisted","value":"v","ttl_ms":`+fmt.Sprint(hour)+`}`,
		`{"op":"persist","key":"persisted"}`,
		`{"op":"set","key":"ctr","value":"9223372036854775806","ttl_ms":`+fmt.Sprint(hour)+`}`,
		`{"op":"incr","key":"ctr"}`,
		`{"op":"incr","key":"ctr"}`,
		`{"op":"incr","key":"neg","delta":-9223372036854775808}`,
		`{"op":"set","key":"lock","value":"w1","if_absent":true,"ttl_ms":`+fmt.Sprint(hour)+`}`,
		`{"op":"set","key":"lock","value":"w2","if_absent":true}`,
		`{"op":"set","key":"lock","value":"w1b","if_value":"w1"}`,
		`{"op":"set","key":"bulk","value":"v","ttl_ms":`+fmt.Sprint(hour)+`}`,
		`{"op":"bulk_set","items":[{"key":"bulk","value":"b1"},{"key":"bulk","value":"b2"}]}`,
		`{"op":"bulk_delete","keys":["persisted","persisted","nope"]}`,
		`{"op":"set","key":"persisted","value":"again"}`,
	)
	want := []struct {
		ok    bool
		code  string
		value string
	}{
		{ok: true}, {ok: true}, {ok: true}, {ok: true}, {ok: true}, {ok: true}, {ok: true},
		{ok: true}, {ok: true, value: "9223372036854775807"}, {code: core.CodeOverflow},
		{ok: true, value: "-9223372036854775808"},
		{ok: true}, {code: core.CodeConditionFailed, value: "w1"}, {ok: true},
		{ok: true}, {ok: true}, {ok: true}, {ok: true},
	}
	for i, w := range want {
		r := resps[i]
		got := ""
		if r.Value != nil {
			got = *r.Value
		}
		if r.OK != w.ok || code(r) != w.code || got != w.value {
			t.Fatalf("answer %d: ok %v code %q value %q, want ok %v code %q value %q (%+v)", i, r.OK, code(r), got, w.ok, w.code, w.value, r.Error)
		}
	}
	if r := resps[6]; r.TTLMs == nil || *r.TTLMs > hour {
		t.Fatalf("persist answered ttl_ms %v, want what was left of an hour", r.TTLMs)
	}
	if r := resps[16]; r.Deleted == nil || *r.Deleted != 1 {
		t.Fatalf("bulk_delete answered deleted %v, want 1", r.Deleted)
	}
	// The keys of 1 ms go, and a read says so, before the kill.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r := roundTrip(t, s.addr, `{"op":"get","key":"short"}`, `{"op":"get","key":"expired"}`)
		if code(r[0]) == core.CodeNotFound && code(r[1]) == core.CodeNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys of 1 ms still there after 10 s: %+v %+v", r[0], r[1])
		}
	}
	s.signal(syscall.SIGKILL)
	<-s.exited

	s = start(t, dir)
	check := func(key, value string, expires bool) {
		t.Helper()
		r := roundTrip(t, s.addr,
			fmt.Sprintf(`{"op":"get","key":%q}`, key),
			fmt.Sprintf(`{"op":"ttl","key":%q}`, key))
		if value == "" {
			if code(r[0]) != core.CodeNotFound {
				t.Errorf("%s after the restart: %+v, want not_found", key, r[0])
			}
			return
		}
		if !r[0].OK || *r[0].Value != value {
			t.Errorf("%s after the restart: %+v, want %q", key, r[0], value)
		}
		switch {
		case expires && (r[1].TTLMs == nil || *r[1].TTLMs == 0 || *r[1].TTLMs > hour):
			t.Errorf("%s after the restart: ttl_ms %v, want within the hour it was given", key, r[1].TTLMs)
		case !expires && r[1].TTLMs != nil:
			t.Errorf("%s after the restart: ttl_ms %d, want no deadline", key, *r[1].TTLMs)
		}
	}
	check("short", "", false)
	check("expired", "", false)
	check("kept", "v", true)
	check("persisted", "again", false)
	check("ctr", "9223372036854775807", true)
	check("neg", "-9223372036854775808", false)
	check("lock", "w1b", false) // the if_value set without ttl_ms took the deadline
	check("bulk", "b2", false)
}
