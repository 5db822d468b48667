package client

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"

	"dkv/core"
)

// The examples in docs/PROTOCOL.md are what the code reads and writes: each
// request line decodes and re-encodes to itself, and so does each response
// line. A change to the types that the doc does not follow fails here.
func TestProtocolDocExamples(t *testing.T) {
	f, err := os.Open("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	inBlock, checked := false, 0
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock || !strings.HasPrefix(line, "{") {
			continue
		}
		checked++
		if strings.Contains(line, `"op"`) {
			req, bad := core.DecodeRequest([]byte(line))
			if bad != nil {
				t.Errorf("PROTOCOL.md:%d: request %s: %v", lineNo, line, bad.Error)
				continue
			}
			// AppendRequest writes debug_simulate_fail even when false;
			// the doc leaves it out.
			enc, err := core.AppendRequest(nil, req)
			got := strings.Replace(strings.TrimSuffix(string(enc), "\n"), `,"debug_simulate_fail":false`, "", 1)
			if err != nil || got != line {
				t.Errorf("PROTOCOL.md:%d: request re-encodes as %s (err %v)", lineNo, got, err)
			}
			continue
		}
		resp, err := core.DecodeResponse([]byte(line))
		if err != nil {
			t.Errorf("PROTOCOL.md:%d: response %s: %v", lineNo, line, err)
			continue
		}
		if got := strings.TrimSuffix(string(core.AppendResponse(nil, resp)), "\n"); got != line {
			t.Errorf("PROTOCOL.md:%d: response re-encodes as %s", lineNo, got)
		}
	}
	if checked < 14 {
		t.Fatalf("found %d example lines in PROTOCOL.md; want at least 14", checked)
	}
}

// A bulk_delete's count beyond the keys it named is no count: it was
// turned into an int as it came, so 2^64-1 read as -1, the answer that
// says the count is unknown, and 2^63 as a negative number (found by
// review).
func TestBulkDeleteCountBeyondItsKeys(t *testing.T) {
	for _, n := range []uint64{3, 1 << 63, 1<<64 - 1} {
		srv := newRawServer(t, answer(func(_ int, req *core.Request) core.Response {
			return core.Response{ID: req.ID, OK: true, Deleted: &n}
		}))
		c := dialT(t, srv.addr)
		got, err := c.BulkDelete(ctxT(t), "a", "b")
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("deleted %d of 2 keys: BulkDelete = %d, %v; want ErrProtocol", n, got, err)
		}
	}
}
