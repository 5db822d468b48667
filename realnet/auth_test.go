package realnet

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"dkv/core"
	"dkv/disk"
)

const testSecret = "correct horse battery staple"

func authConfig() HostConfig {
	cfg := respConfig()
	cfg.AuthSecret = testSecret
	return cfg
}

// With a password, a JSON connection is served nothing but auth until it
// sends the password; a request refused for it is not run, the connection
// stays usable, and pipelined requests after a good auth are served.
func TestAuthJSON(t *testing.T) {
	forEachHost(t, authConfig(), func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		c := dial(t, r.addr)
		c.send(`{"id":1,"op":"set","key":"k","value":"before"}` + "\n")
		if resp := c.recvCode(core.CodeAuthRequired); string(resp.ID) != "1" || !strings.Contains(resp.Error.Message, `"op":"auth"`) {
			t.Errorf("set before auth: %+v", resp)
		}
		c.send(`{"op":"ping"}` + "\n")
		c.recvCode(core.CodeAuthRequired)
		c.send(`{"op":"auth"}` + "\n")
		c.recvCode(core.CodeBadRequest)
		c.send(`{"id":"a","op":"auth","password":"wrong"}` + "\n")
		if resp := c.recvCode(core.CodeAuthFailed); string(resp.ID) != `"a"` {
			t.Errorf("wrong password: %+v", resp)
		}
		c.send(`{"op":"get","key":"k"}` + "\n")
		c.recvCode(core.CodeAuthRequired)
		// The right password, and requests pipelined behind it.
		c.send(`{"op":"auth","password":"` + testSecret + `"}` + "\n" + `{"op":"get","key":"k"}` + "\n" +
			`{"op":"set","key":"k","value":"after"}` + "\n" + `{"op":"get","key":"k"}` + "\n")
		c.recvCode("")
		c.recvCode(core.CodeNotFound) // the set before auth was not run
		c.recvCode("")
		if resp := c.recvCode(""); resp.Value == nil || *resp.Value != "after" {
			t.Errorf("get after auth: %+v", resp)
		}
		// A wrong password later leaves the connection authenticated.
		c.send(`{"op":"auth","password":"wrong"}` + "\n" + `{"op":"ping"}` + "\n")
		c.recvCode(core.CodeAuthFailed)
		c.recvCode("")

		// Another connection starts unauthenticated.
		d := dial(t, r.addr)
		d.send(`{"op":"get","key":"k"}` + "\n")
		d.recvCode(core.CodeAuthRequired)
	})
}

// Guessing costs a connection per authFailuresMax wrong passwords.
func TestAuthFailuresCloseTheConnection(t *testing.T) {
	forEachHost(t, authConfig(), func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		c := dial(t, r.addr)
		for i := 1; i <= authFailuresMax; i++ {
			c.send(`{"op":"auth","password":"guess"}` + "\n")
			resp := c.recvCode(core.CodeAuthFailed)
			if closing := strings.Contains(resp.Error.Message, "closes"); closing != (i == authFailuresMax) {
				t.Errorf("failure %d: %q", i, resp.Error.Message)
			}
		}
		c.expectClosed()

		rc := dialRESP(t, r.addr)
		for range authFailuresMax {
			rc.send("AUTH guess\r\n")
			if line := rc.respLine(); line != "-"+respWrongPass {
				t.Fatalf("AUTH guess: %q", line)
			}
		}
		rc.expectClosed()

		// A connection that authenticated is never closed for wrong
		// passwords, however many, before its auth or after it.
		for _, proto := range []string{"json", "resp"} {
			wrong, right, ping := `{"op":"auth","password":"guess"}`+"\n", `{"op":"auth","password":"`+testSecret+`"}`+"\n", `{"op":"ping"}`+"\n"
			if proto == "resp" {
				wrong, right, ping = "AUTH guess\r\n", fmt.Sprintf("*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(testSecret), testSecret), "PING\r\n"
			}
			c := dial(t, r.addr)
			c.send(strings.Repeat(wrong, authFailuresMax-1) + right + strings.Repeat(wrong, 2*authFailuresMax) + ping)
			for i := range 3 * authFailuresMax {
				line, err := c.line()
				if err != nil {
					t.Fatalf("%s: answer %d: %v (the connection closed)", proto, i, err)
				}
				if ok := i == authFailuresMax-1; ok != !strings.Contains(strings.ToLower(line), "wrong") {
					t.Fatalf("%s: answer %d: %q", proto, i, line)
				}
				if strings.Contains(line, "closes") {
					t.Fatalf("%s: answer %d says the connection closes: %q", proto, i, line)
				}
			}
			if line, err := c.line(); err != nil || !strings.Contains(line, "ok") && !strings.Contains(line, "PONG") {
				t.Fatalf("%s: ping after the wrong passwords: %q, %v", proto, line, err)
			}
		}
	})
}

// A server without a password says so to an auth, and serves everything
// without one.
func TestAuthWithoutASecret(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dial(t, r.addr)
	c.send(`{"op":"auth","password":"x"}` + "\n" + `{"op":"ping"}` + "\n")
	if resp := c.recvCode(core.CodeAuthFailed); !strings.Contains(resp.Error.Message, "--auth-file") {
		t.Errorf("auth without a secret: %+v", resp)
	}
	c.recvCode("")
	rc := dialRESP(t, r.addr)
	rc.send("AUTH x\r\nPING\r\n")
	if line := rc.respLine(); line != "-"+respNoPassword {
		t.Errorf("AUTH without a secret: %q", line)
	}
	if line := rc.respLine(); line != "+PONG" {
		t.Errorf("PING: %q", line)
	}
	// As Redis 7's default user without a password, the two-argument
	// forms take any password (AUTH with one answers the error above, as
	// Redis does).
	rc.send(respArray("AUTH", "default", "anything") + respArray("AUTH", "someone", "anything"))
	if line := rc.respLine(); line != "+OK" {
		t.Errorf("AUTH default without a secret: %q", line)
	}
	if line := rc.respLine(); line != "-"+respNoPassword {
		t.Errorf("AUTH of another user without a secret: %q", line)
	}
	rc.send(respArray("HELLO", "2", "AUTH", "default", "anything"))
	if line := rc.respLine(); line != "*14" {
		t.Errorf("HELLO 2 AUTH default without a secret: %q", line)
	}
}

// RESP: NOAUTH for every command but AUTH, HELLO … AUTH and QUIT, as Redis
// answers them; AUTH with and without the user; inline commands too.
func TestAuthRESP(t *testing.T) {
	forEachHost(t, authConfig(), func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		rc := dialRESP(t, r.addr)
		for _, cmd := range []string{"PING", "SET k v", "GET k", "CLIENT ID", "COMMAND COUNT", "HELLO", "HELLO 2", "HELLO 2 SETNAME x"} {
			rc.send(respArray(strings.Fields(cmd)...))
			want := "-" + respNoAuth
			if strings.HasPrefix(cmd, "HELLO") {
				want = "-" + respNoAuthHello
			}
			if line := rc.respLine(); line != want {
				t.Errorf("%s before AUTH: %q, want %q", cmd, line, want)
			}
		}
		for _, cmd := range [][]string{{"AUTH"}, {"AUTH", "a", "b", "c"}} {
			rc.send(respArray(cmd...))
			if line := rc.respLine(); !strings.Contains(line, "wrong number of arguments for 'auth'") {
				t.Errorf("%q: %q", cmd, line)
			}
		}
		rc.send(respArray("AUTH", "someone", testSecret))
		if line := rc.respLine(); line != "-"+respWrongPass {
			t.Errorf("AUTH of another user: %q", line)
		}
		rc.send(respArray("AUTH", "default", testSecret))
		if line := rc.respLine(); line != "+OK" {
			t.Fatalf("AUTH default: %q", line)
		}
		rc.send(respArray("SET", "k", "v"))
		if line := rc.respLine(); line != "+OK" {
			t.Errorf("SET after AUTH: %q", line)
		}

		// Inline, telnet style; the failures above were on the other
		// connection.
		in := dialRESP(t, r.addr)
		in.send("ping\r\n")
		if line := in.respLine(); line != "-"+respNoAuth {
			t.Errorf("inline PING: %q", line)
		}
		in.send("AUTH \"" + testSecret + "\"\r\nGET k\r\n")
		if line := in.respLine(); line != "+OK" {
			t.Errorf("inline AUTH: %q", line)
		}
		if line := in.respLine(); line != "$1" {
			t.Errorf("inline GET: %q", line)
		}

		// HELLO 2 AUTH: a wrong pair takes nothing, a right one
		// authenticates and names the connection.
		h := dialRESP(t, r.addr)
		h.send(respArray("HELLO", "2", "AUTH", "default", "wrong", "SETNAME", "n"))
		if line := h.respLine(); line != "-"+respWrongPass {
			t.Errorf("HELLO with a wrong password: %q", line)
		}
		h.send(respArray("HELLO", "2", "AUTH", "default", testSecret, "SETNAME", "n"))
		if line := h.respLine(); line != "*14" {
			t.Fatalf("HELLO AUTH: %q", line)
		}
		for h.respLine() != "*0" { // the map's last value: no modules
		}
		h.send(respArray("CLIENT", "GETNAME"))
		if line, _ := h.respLine(), h.respLine(); line != "$1" {
			t.Errorf("CLIENT GETNAME after HELLO AUTH SETNAME: %q", line)
		}
		h.send(respArray("QUIT"))
		if line := h.respLine(); line != "+OK" {
			t.Errorf("QUIT: %q", line)
		}
	})
}

// Redis's own client libraries authenticate as they would with Redis:
// go-redis with a password, in RESP2 and asking for RESP3 first.
func TestAuthWithGoRedis(t *testing.T) {
	r := startSingle(t, authConfig())
	ctx := context.Background()
	for _, protocol := range []int{2, 3} {
		rc := redis.NewClient(&redis.Options{Addr: r.addr, Protocol: protocol, Password: testSecret, MaxRetries: -1})
		defer rc.Close()
		if err := rc.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Errorf("protocol %d: SET with the password: %v", protocol, err)
		}
		wrong := redis.NewClient(&redis.Options{Addr: r.addr, Protocol: protocol, Password: "wrong", MaxRetries: -1})
		defer wrong.Close()
		if err := wrong.Get(ctx, "k").Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("protocol %d: GET with a wrong password: %v", protocol, err)
		}
		none := redis.NewClient(&redis.Options{Addr: r.addr, Protocol: protocol, MaxRetries: -1})
		defer none.Close()
		if err := none.Get(ctx, "k").Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Errorf("protocol %d: GET without a password: %v", protocol, err)
		}
	}
}

// respArray encodes a command as a RESP array of bulk strings.
func respArray(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// respLine reads one line of a reply, CRLF dropped.
func (c *respClient) respLine() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a reply: %v (got %q)", err, line)
	}
	return strings.TrimSuffix(line, "\r\n")
}

// A connection that has not authenticated within AuthTimeout is closed,
// silently, whatever it sends meanwhile; one that has is kept to the idle
// timeout.
func TestAuthTimeout(t *testing.T) {
	cfg := authConfig()
	cfg.AuthTimeout = 300 * time.Millisecond
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		start := time.Now()
		silent := dial(t, r.addr)
		chatty := dial(t, r.addr)
		chatty.send(`{"op":"ping"}` + "\n")
		chatty.recvCode(core.CodeAuthRequired)
		chatty.send(`{"op":"ping"`) // a partial line does not hold it open either
		authed := dial(t, r.addr)
		authed.send(`{"op":"auth","password":"` + testSecret + `"}` + "\n")
		authed.recvCode("")
		silent.expectClosed()
		chatty.expectClosed()
		if d := time.Since(start); d > cfg.IdleTimeout {
			t.Errorf("closed after %v, the idle timeout's %v, not the auth timeout's %v", d, cfg.IdleTimeout, cfg.AuthTimeout)
		}
		time.Sleep(2 * cfg.AuthTimeout)
		authed.send(`{"op":"ping"}` + "\n")
		authed.recvCode("")
	})
}

// Refusals for the password are logged with the client's address (a
// line every logIntervalMin at most), never with the password sent or
// the secret: the metrics counted guesses but named no one.
func TestAuthRefusalsAreLogged(t *testing.T) {
	forEachHost(t, authConfig(), func(t *testing.T, cfg HostConfig) {
		l := &testLog{t: t, name: "host"}
		d, err := disk.Open(t.TempDir(), disk.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		// The host's log is the test's (startHostOn's t.Logf); its
		// refusals' lines are collected here.
		r := startHostOn(t, core.NewSingleNode(core.DefaultSingleConfig()), d, cfg, func(h *Host) { h.refuseLog.out = l.logf })
		c := dial(t, r.addr)
		c.send(`{"op":"get","key":"k"}` + "\n")
		c.recvCode(core.CodeAuthRequired)
		l.waitFor(t, "refused a request without the password from 127.0.0.1:")
		c.send(`{"op":"auth","password":"guess-one"}` + "\n")
		c.recvCode(core.CodeAuthFailed)
		l.waitFor(t, "refused a wrong password from 127.0.0.1:")
		// More within logIntervalMin are held back (and counted in the
		// next line), whatever the protocol.
		rc := dialRESP(t, r.addr)
		for range authFailuresMax {
			rc.send("AUTH guess-two\r\n")
			if line := rc.respLine(); line != "-"+respWrongPass {
				t.Fatalf("AUTH guess-two: %q", line)
			}
		}
		c.send(`{"op":"auth","password":"guess-three"}` + "\n")
		c.recvCode(core.CodeAuthFailed)
		if log := l.String(); strings.Contains(log, "guess") || strings.Contains(log, testSecret) {
			t.Errorf("the log names a password:\n%s", log)
		}
	})
}
