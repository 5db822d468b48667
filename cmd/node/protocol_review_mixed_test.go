package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dkv/core"
)

// mixedStep is one request of a pipelined stream and what its answer must
// be: ok (and the keys it writes), or a refusal whose answer starts with
// want (a JSON error code, or a RESP error's first words). refusedKeys
// name the keys a refused request would have written: they must never
// exist.
type mixedStep struct {
	line        string
	ok          bool
	want        string
	keys        []string
	refusedKeys []string
}

// mixedJSON is a stream of JSON lines: good writes between the mistakes a
// client author makes (a mistyped field, a number as a string, a missing
// op, an unknown field, an empty line, an array for an object, an array
// over --max-bulk-entries), each of which must get its own error and
// leave the connection serving.
func mixedJSON(rounds int) []mixedStep {
	var steps []mixedStep
	for i := range rounds {
		k := fmt.Sprintf("j%d", i)
		steps = append(steps, mixedStep{line: fmt.Sprintf(`{"id":%q,"op":"set","key":%q,"value":"v%d"}`, k, k, i), ok: true, keys: []string{k}})
		bad := fmt.Sprintf("jbad%d", i)
		switch i % 8 {
		case 0:
			steps = append(steps, mixedStep{line: fmt.Sprintf(`{"id":1,"op":"set","key":%q,"value":5}`, bad), want: core.CodeBadRequest, refusedKeys: []string{bad}})
		case 1:
			steps = append(steps, mixedStep{line: fmt.Sprintf(`{"id":2,"op":"set","key":%q,"value":"v","ttl_ms":"5000"}`, bad), want: core.CodeBadRequest, refusedKeys: []string{bad}})
		case 2:
			steps = append(steps, mixedStep{line: fmt.Sprintf(`{"id":3,"key":%q,"value":"v"}`, bad), want: core.CodeBadRequest, refusedKeys: []string{bad}})
		case 3:
			steps = append(steps, mixedStep{line: fmt.Sprintf(`{"id":4,"op":"set","key":%q,"vaule":"v"}`, bad), want: core.CodeBadRequest, refusedKeys: []string{bad}})
		case 4:
			steps = append(steps, mixedStep{line: "", want: core.CodeBadRequest})
		case 5:
			steps = append(steps, mixedStep{line: fmt.Sprintf(`[{"op":"set","key":%q,"value":"v"}]`, bad), want: core.CodeBadRequest, refusedKeys: []string{bad}})
		case 6:
			steps = append(steps, mixedStep{line: fmt.Sprintf(`{"id":7,"op":"bulk_set","items":[{"key":%q,"value":"v"},{"key":"%s2"}]}`, bad, bad), want: core.CodeBadRequest, refusedKeys: []string{bad}})
		case 7:
			if i%64 == 7 {
				keys := make([]string, 10_001)
				for j := range keys {
					keys[j] = fmt.Sprintf("%s-%d", bad, j)
				}
				b, _ := json.Marshal(map[string]any{"id": 8, "op": "bulk_delete", "keys": keys})
				steps = append(steps, mixedStep{line: string(b), want: core.CodeTooLarge})
			}
			steps = append(steps, mixedStep{line: fmt.Sprintf(`{"id":9,"op":"bulk_set","items":[{"key":"%sa","value":"1"},{"key":"%sb","value":"2"}]}`, k, k), ok: true, keys: []string{k + "a", k + "b"}})
		}
	}
	return steps
}

// respCmd is a RESP array of bulk strings.
func respCmd(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// mixedRESP is the RESP stream of the same kind: good SETs and MSETs, inline
// and as arrays, between wrong arities, an unknown command, a bad SET
// option, a non-integer INCRBY and the empty key.
func mixedRESP(rounds int) []mixedStep {
	var steps []mixedStep
	for i := range rounds {
		k := fmt.Sprintf("r%d", i)
		line := respCmd("SET", k, fmt.Sprintf("v%d", i))
		if i%3 == 0 {
			line = "SET " + k + " v\r\n" // inline, as typed
		}
		steps = append(steps, mixedStep{line: line, ok: true, keys: []string{k}})
		bad := fmt.Sprintf("rbad%d", i)
		switch i % 7 {
		case 0:
			steps = append(steps, mixedStep{line: respCmd("SET", bad), want: "-ERR wrong number of arguments for 'set' command", refusedKeys: []string{bad}})
		case 1:
			steps = append(steps, mixedStep{line: respCmd("MSET", bad, "v", bad+"x"), want: "-ERR wrong number of arguments for 'mset' command", refusedKeys: []string{bad}})
		case 2:
			steps = append(steps, mixedStep{line: respCmd("HSET", bad, "f", "v"), want: "-ERR unknown command 'HSET'", refusedKeys: []string{bad}})
		case 3:
			steps = append(steps, mixedStep{line: respCmd("SET", bad, "v", "EX", "ten"), want: "-ERR value is not an integer or out of range", refusedKeys: []string{bad}})
		case 4:
			steps = append(steps, mixedStep{line: respCmd("INCRBY", bad, "1.5"), want: "-ERR value is not an integer or out of range", refusedKeys: []string{bad}})
		case 5:
			steps = append(steps, mixedStep{line: respCmd("MSET", bad, "v", "", "v"), want: "-ERR bad_request: ", refusedKeys: []string{bad}})
		case 6:
			steps = append(steps, mixedStep{line: respCmd("MSET", k+"a", "1", k+"b", "2"), ok: true, keys: []string{k + "a", k + "b"}})
		}
	}
	return steps
}

// runMixed sends steps on nc from a goroutine and checks each answer in
// order; once acksBeforeKill writes were answered ok it calls reached
// (the test kills the server once both streams have), and it goes on
// reading until the connection ends, which it must not before killed is
// closed. It returns the keys of the writes answered ok, or
// what was wrong (it runs on a goroutine of its own: no t.Fatal).
func runMixed(nc net.Conn, steps []mixedStep, resp bool, acksBeforeKill int, reached func(), killed <-chan struct{}) (acked []string, err error) {
	go func() {
		w := bufio.NewWriterSize(nc, 64<<10)
		for _, s := range steps {
			w.WriteString(s.line)
			if !resp {
				w.WriteByte('\n')
			}
		}
		w.Flush() // the server's SIGKILL ends it with an error
	}()
	br := bufio.NewReaderSize(nc, 1<<20)
	oks := 0
	for _, s := range steps {
		line, err := br.ReadString('\n')
		if err != nil {
			select {
			case <-killed:
				return acked, nil
			default:
				return nil, fmt.Errorf("the connection ended after %d answers ok, before the kill: %v", oks, err)
			}
		}
		line = strings.TrimRight(line, "\r\n")
		var ok bool
		var got string
		if resp {
			ok = line == "+OK"
			got = line
		} else {
			var r core.Response
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				return nil, fmt.Errorf("answer %q to %.80q is not JSON: %v", line, s.line, err)
			}
			ok = r.OK
			if r.Error != nil {
				got = r.Error.Code
			}
		}
		switch {
		case s.ok && !ok:
			return nil, fmt.Errorf("%.80q answered %.200q, want ok", s.line, line)
		case !s.ok && (ok || !strings.HasPrefix(got, s.want)):
			return nil, fmt.Errorf("%.80q answered %.200q, want %q", s.line, line, s.want)
		case ok:
			acked = append(acked, s.keys...)
			if oks++; oks == acksBeforeKill {
				reached()
			}
		}
	}
	return nil, fmt.Errorf("every one of %d requests was answered before the kill: make the streams longer", len(steps))
}

// A client pipelines good writes between malformed, mistyped and
// oversized requests, over JSON and over RESP at once: each bad one gets
// its own error and the connection goes on serving, the server is
// SIGKILLed in mid-stream, and after a restart every write answered ok is
// there, and none of the refused ones is.
func TestProtocolReviewPipelinedMistakesThenKill(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	jc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer jc.Close()
	rc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	deadline := time.Now().Add(2 * time.Minute)
	jc.SetDeadline(deadline)
	rc.SetDeadline(deadline)

	const rounds, acksBeforeKill = 20_000, 2_000
	jsonSteps, respSteps := mixedJSON(rounds), mixedRESP(rounds)
	killed := make(chan struct{})
	var mu sync.Mutex
	streams := 0
	reached := func() {
		mu.Lock()
		defer mu.Unlock()
		if streams++; streams == 2 {
			close(killed)
			s.cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	type result struct {
		acked []string
		err   error
	}
	results := make(chan result, 1)
	go func() {
		acked, err := runMixed(rc, respSteps, true, acksBeforeKill, reached, killed)
		results <- result{acked, err}
	}()
	jsonAcked, err := runMixed(jc, jsonSteps, false, acksBeforeKill, reached, killed)
	r := <-results // the deadline bounds it
	if r.err != nil {
		t.Errorf("RESP: %v", r.err)
	}
	if err != nil {
		t.Errorf("JSON: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	respAcked := r.acked
	<-s.exited
	if len(jsonAcked) == 0 || len(respAcked) == 0 {
		t.Fatalf("acknowledged: %d JSON keys, %d RESP keys; want both streams served", len(jsonAcked), len(respAcked))
	}

	s2 := start(t, dir)
	check := func(keys []string, want bool) {
		t.Helper()
		for len(keys) > 0 {
			n := min(len(keys), 1000)
			b, _ := json.Marshal(map[string]any{"op": "bulk_get", "keys": keys[:n]})
			r := roundTrip(t, s2.addr, string(b))[0]
			if !r.OK || len(r.Values) != n {
				t.Fatalf("bulk_get after the restart: %+v", r.Error)
			}
			for i, v := range r.Values {
				if (v != nil) != want {
					t.Fatalf("after the SIGKILL and restart, key %q exists: %v, want %v", keys[i], v != nil, want)
				}
			}
			keys = keys[n:]
		}
	}
	check(jsonAcked, true)
	check(respAcked, true)
	var refused []string
	for _, steps := range [][]mixedStep{jsonSteps, respSteps} {
		for _, st := range steps {
			refused = append(refused, st.refusedKeys...)
		}
	}
	check(refused, false)
}
