package realnet

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// A go-redis transaction (MULTI, its commands, EXEC in one write) fails
// whole: every command is refused, naming why, EXEC answers EXECABORT,
// and none of its writes applies. Before, MULTI was an unknown command,
// the SETs behind it ran one by one, and TxPipelined reported the
// transaction failed while both keys had been written.
func TestRESPTransactionRunsNothing(t *testing.T) {
	for _, loops := range []int{1, 0} {
		cfg := respConfig()
		cfg.EventLoops = loops
		r := startSingle(t, cfg)
		ctx := context.Background()
		rc := goRedis(t, r.addr, 2)
		cmds, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "tx1", "a", 0)
			p.Incr(ctx, "tx2")
			p.Get(ctx, "tx1")
			return nil
		})
		if err == nil || !strings.HasPrefix(err.Error(), "EXECABORT ") {
			t.Errorf("event loops %d: TxPipelined: %v, want EXECABORT", loops, err)
		}
		if len(cmds) != 3 {
			t.Fatalf("event loops %d: %d commands", loops, len(cmds))
		}
		for _, c := range cmds {
			if c.Err() == nil || !strings.Contains(c.Err().Error(), "dkv does not serve MULTI/EXEC") {
				t.Errorf("event loops %d: %s: %v, want a refusal that names MULTI/EXEC", loops, c.Name(), c.Err())
			}
		}
		for _, k := range []string{"tx1", "tx2"} {
			if v, err := rc.Get(ctx, k).Result(); !errors.Is(err, redis.Nil) {
				t.Errorf("event loops %d: %s = %q, %v after a refused transaction; want it never written", loops, k, v, err)
			}
		}
		// The connection is still in step: each reply is its command's.
		if err := rc.Set(ctx, "after", "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := rc.Get(ctx, "after").Result(); err != nil || v != "x" {
			t.Errorf("event loops %d: GET after the transaction = %q, %v", loops, v, err)
		}
		// WATCH is refused before the transaction's function runs.
		ran := false
		err = rc.Watch(ctx, func(tx *redis.Tx) error { ran = true; return nil }, "tx1")
		if err == nil || !strings.Contains(err.Error(), "dkv does not serve WATCH") || ran {
			t.Errorf("event loops %d: Watch: %v (function ran: %v)", loops, err, ran)
		}
	}
}

// MULTI, EXEC, DISCARD, WATCH and UNWATCH byte for byte, as Redis answers
// them where dkv can (the order checks, an empty transaction), and the
// refusals where it cannot.
func TestRESPTransactionReplies(t *testing.T) {
	r := startSingle(t, respConfig())
	const refused = "-" + respNoTransaction + "\r\n"
	for _, tc := range []struct{ send, want string }{
		{"EXEC\r\n", "-ERR EXEC without MULTI\r\n"},
		{"DISCARD\r\n", "-ERR DISCARD without MULTI\r\n"},
		{"MULTI\r\nEXEC\r\n", "+OK\r\n*0\r\n"},
		{"MULTI x\r\n", "-ERR wrong number of arguments for 'multi' command\r\n"},
		{"MULTI\r\nMULTI\r\nEXEC\r\n", "+OK\r\n-ERR MULTI calls can not be nested\r\n*0\r\n"},
		{"MULTI\r\nSET k v\r\nPING\r\nDISCARD\r\nGET k\r\n", "+OK\r\n" + refused + refused + "+OK\r\n$-1\r\n"},
		{"MULTI\r\nSET k v\r\nDEL k\r\nEXEC\r\nGET k\r\n", "+OK\r\n" + refused + refused +
			"-" + respExecAbort + "\r\n$-1\r\n"},
		{"MULTI\r\nWATCH k\r\nUNWATCH\r\nEXEC\r\n", "+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n" + refused +
			"-" + respExecAbort + "\r\n"},
		{"WATCH\r\n", "-ERR wrong number of arguments for 'watch' command\r\n"},
		{"UNWATCH\r\n", "+OK\r\n"},
	} {
		c := dialRESP(t, r.addr)
		c.send(tc.send)
		c.expect(tc.want)
		c.nc.Close()
	}
	// QUIT inside a MULTI closes, as in Redis.
	c := dialRESP(t, r.addr)
	c.send("MULTI\r\nQUIT\r\n")
	c.expect("+OK\r\n+OK\r\n")
	c.expectClosed()
}
