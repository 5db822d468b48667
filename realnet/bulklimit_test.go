package realnet

import (
	"strings"
	"testing"

	"dkv/core"
)

// The host applies its BulkEntriesMax to a JSON request as the line is
// decoded, as it does to a RESP array's count: a bulk request past it is
// refused with too_large at the entry past the limit, before the rest is
// decoded, and never reaches the node (whose own limit here is 10,000).
// A line of 4 million keys was decoded whole and then refused by the node:
// 225 MB more and 3.4 s of other clients waiting.
func TestJSONBulkEntriesPastTheHostsLimitAreRefusedAsDecoded(t *testing.T) {
	cfg := respConfig()
	cfg.BulkEntriesMax = 3
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		c := dial(t, r.addr)
		keys := func(n int) string { return `"k"` + strings.Repeat(`,"k"`, n-1) }
		items := func(n int) string {
			return `{"key":"k","value":"v"}` + strings.Repeat(`,{"key":"k","value":"v"}`, n-1)
		}
		for _, tc := range []struct{ line, code, message string }{
			{`{"id":1,"op":"bulk_set","items":[` + items(3) + `]}`, "", ""},
			{`{"id":2,"op":"bulk_get","keys":[` + keys(3) + `]}`, "", ""},
			{`{"id":3,"op":"bulk_set","items":[` + items(4) + `]}`, core.CodeTooLarge, "bulk_set has more than 3 items; the limit is 3"},
			{`{"id":4,"op":"bulk_get","keys":[` + keys(4) + `]}`, core.CodeTooLarge, "bulk_get has more than 3 keys; the limit is 3"},
			{`{"id":5,"op":"bulk_delete","keys":[` + keys(1000) + `]}`, core.CodeTooLarge, "bulk_delete has more than 3 keys; the limit is 3"},
			{`{"id":6,"op":"get","key":"k"}`, "", ""}, // the connection goes on
		} {
			c.send(tc.line + "\n")
			resp := c.recvCode(tc.code)
			if tc.code != "" && resp.Error.Message != tc.message {
				t.Errorf("%.60s…: %q, want %q", tc.line, resp.Error.Message, tc.message)
			}
		}
	})
}
