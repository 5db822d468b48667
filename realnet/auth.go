package realnet

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"time"

	"dkv/core"
)

// The client port's password (HostConfig.AuthSecret). A connection starts
// unauthenticated and is served nothing but auth until it proves the
// secret: JSON's {"op":"auth","password":…}, RESP's AUTH or HELLO … AUTH.
// The host answers these itself; the node never sees them. The state is
// the reader's (conn.rd's owner), so it needs no lock.

// unauthedRequestBytesMax bounds a request (a JSON line, a RESP command)
// of a connection that has yet to authenticate, where --max-request-bytes
// bounds those that have: an auth is a password's line. Without it, a
// stranger who knows no password made the server buffer a whole request
// a connection, 16 MiB each (40 connections took RSS from 10 to 728 MiB;
// found by review). Redis bounds an unauthenticated client's bulk
// strings to 16 KiB too.
const unauthedRequestBytesMax = 16 << 10

// requestBytesMax is the bound on c's next request: --max-request-bytes,
// or unauthedRequestBytesMax, if lower, until c authenticates.
func (c *conn) requestBytesMax() int {
	if c.authRequired() {
		return min(c.h.cfg.RequestBytesMax, unauthedRequestBytesMax)
	}
	return c.h.cfg.RequestBytesMax
}

// authFailuresMax: a connection that sends this many wrong passwords is
// closed after the last answer, so that guessing costs a connection per
// few guesses.
const authFailuresMax = 3

// authState is a connection's standing with the secret.
type authState struct {
	authed   bool
	failures int
	// by is when a connection that has not authenticated is closed
	// (HostConfig.AuthTimeout after it was accepted), so that strangers
	// cannot hold the --max-conns slots for an idle timeout each.
	by time.Time
}

// authDeadline is the read deadline d, or the authentication deadline if
// that comes first and c has yet to authenticate.
func (c *conn) authDeadline(d time.Time) time.Time {
	if c.authRequired() && c.auth.by.Before(d) {
		return c.auth.by
	}
	return d
}

// authExpired reports whether c is past its time to authenticate.
func (c *conn) authExpired() bool {
	return c.authRequired() && !time.Now().Before(c.auth.by)
}

// authDigest is what the host keeps of the secret: comparing digests of
// equal length in constant time tells an attacker nothing of the secret's
// length or bytes by timing.
type authDigest [sha256.Size]byte

func newAuthDigest(secret string) *authDigest {
	if secret == "" {
		return nil
	}
	d := authDigest(sha256.Sum256([]byte(secret)))
	return &d
}

// SetAuthSecret replaces the client port's password (HostConfig.AuthSecret)
// for the connections that authenticate from now on; those that have keep
// going. An empty secret is refused: a server that asked for a password
// does not stop asking while it runs.
func (h *Host) SetAuthSecret(secret string) error {
	switch {
	case secret == "":
		return errors.New("an empty password")
	case len(secret) > core.AuthSecretBytesMax:
		return fmt.Errorf("the password is %d bytes; the limit is %d", len(secret), core.AuthSecretBytesMax)
	}
	h.auth.Store(newAuthDigest(secret))
	return nil
}

// authRequired reports whether c must still prove the secret.
func (c *conn) authRequired() bool { return !c.auth.authed && c.h.auth.Load() != nil }

// authenticate checks password against the secret. It returns the failure
// to answer (nil on success) and whether the connection is to close after
// it.
func (c *conn) authenticate(password string) (failure *core.Response, closing bool) {
	secret := c.h.auth.Load()
	if secret == nil {
		r := core.ErrorResponse(core.CodeAuthFailed, "this server has no password (it was started without --auth-file): send no auth")
		return &r, false
	}
	sum := authDigest(sha256.Sum256([]byte(password)))
	if subtle.ConstantTimeCompare(sum[:], secret[:]) == 1 {
		c.auth.authed = true
		return nil, false
	}
	closing = c.authFailed()
	msg := "wrong password"
	if closing {
		msg = "wrong password; the connection closes after " + strconv.Itoa(authFailuresMax) + " failed attempts"
	}
	r := core.ErrorResponse(core.CodeAuthFailed, "%s", msg)
	return &r, closing
}

// authFailed counts a failed attempt and reports whether the connection is
// to close after its answer. A failure leaves a connection that had
// authenticated before as it was (as Redis does), and never closes it:
// it proved the password once, and guessing gains it nothing. (Counted
// with the failures before its auth, three wrong passwords in all closed
// it; found by review.)
func (c *conn) authFailed() (closing bool) {
	c.auth.failures++
	closing = !c.auth.authed && c.auth.failures >= authFailuresMax
	// Logged, a line every logIntervalMin at most with a count of those
	// held back, so that the log names where guesses (or a client given
	// another password) come from: the metrics count them but name no
	// one (found by review). Never the password sent.
	what := "a connection stays open"
	if closing {
		what = "the connection closes"
	}
	c.h.refuseLog.logf("auth-failed", "refused a wrong password from %v (%d on this connection; %s)", c.nc.RemoteAddr(), c.auth.failures, what)
	return closing
}

// jsonAuth answers req on the host when it is an auth, or when c has yet
// to authenticate; it returns nil for a request that goes to the node.
func (c *conn) jsonAuth(req *core.Request) (s *slot, closing bool) {
	var resp core.Response
	switch {
	case req.Op == core.OpAuth:
		if bad := (core.Limits{}).Validate(req); bad != nil {
			resp = *bad
			break
		}
		failure, cl := c.authenticate(req.Password)
		closing = cl
		if resp = core.OKResponse(); failure != nil {
			resp = *failure
		}
	case c.authRequired():
		resp = core.ErrorResponse(core.CodeAuthRequired,
			"this server needs a password: send {\"op\":\"auth\",\"password\":\"…\"} before any other request")
	default:
		return nil, false
	}
	resp.ID = req.ID
	if resp.Error != nil {
		c.refusedAuth(resp.Error.Code)
	}
	return filledSlot(resp), closing
}

// refusedAuth counts a request refused for the password (code: auth_required
// or auth_failed) with the host's other refusals (Metrics.Refused), so that
// an operator sees guessing, or a client without the password, in the
// metrics.
func (c *conn) refusedAuth(code string) {
	if c.h.metrics != nil {
		c.h.metrics.Refused(code)
	}
	if code == core.CodeAuthRequired {
		// A client without the password: its requests are refused
		// until it sends one, which its operator will want to find.
		c.h.refuseLog.logf("auth-required", "refused a request without the password from %v: the server has --auth-file, the client sent no auth", c.nc.RemoteAddr())
	}
}

// RESP's words for the same answers, as Redis gives them.
const (
	respNoAuth      = "NOAUTH Authentication required."
	respNoAuthHello = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	respWrongPass   = "WRONGPASS invalid username-password pair or user is disabled."
	respNoPassword  = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
)

// respAuthUser is the one user there is: Redis's default user, whose
// password is the secret.
const respAuthUser = "default"

// respAuthenticate checks a RESP AUTH's (or HELLO AUTH's) user and
// password. It returns the error to answer ("" on success) and whether the
// connection closes after it.
func (c *conn) respAuthenticate(user, password []byte) (errMsg string, closing bool) {
	if c.h.auth.Load() == nil {
		if string(user) == respAuthUser {
			// Redis 7's default user without a password takes any, by
			// AUTH default and HELLO … AUTH default, where AUTH with
			// the password alone is an error; so does dkv (found by
			// review: it refused both forms).
			return "", false
		}
		c.refusedAuth(core.CodeAuthFailed)
		return respNoPassword, false
	}
	if (user != nil && string(user) != respAuthUser) || len(password) == 0 || len(password) > core.AuthSecretBytesMax {
		// Not the one user, or a password that cannot be the secret:
		// a failed attempt all the same.
		c.refusedAuth(core.CodeAuthFailed)
		return respWrongPass, c.authFailed()
	}
	if failure, closing := c.authenticate(string(password)); failure != nil {
		c.refusedAuth(core.CodeAuthFailed)
		return respWrongPass, closing
	}
	return "", false
}
