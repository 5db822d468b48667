package realnet

import (
	"testing"
	"time"

	"dkv/internal/tlsfiles"
)

// A stop that comes while a TLS connection, its handshake done, is on its
// way to a loop ends it without a data race (run with -race): the stop's
// shutdown once read the pipe's detached flag, to end a handshake it
// thought was running, as the handshake's goroutine set it.
func TestStopAsATLSConnectionGoesToItsLoop(t *testing.T) {
	f := testCerts(t)
	cfg := testConfig()
	cfg.EventLoops = 2
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	// No channel or lock between the hook and the stop: either would
	// order the two for the race detector. The hook holds the connection
	// between its handshake and its loop well past the stop.
	testHookHandshaken = func() { time.Sleep(300 * time.Millisecond) }
	t.Cleanup(func() { testHookHandshaken = nil })
	r := startSingle(t, cfg)
	c := dialTLS(t, r.addr, testClientTLS(t, f.CA, "", ""))
	time.Sleep(50 * time.Millisecond) // the server's handshake is done
	start := time.Now()
	r.host.Shutdown()
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the stop took %v", took)
	}
	c.expectClosed()
}
