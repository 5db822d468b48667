package realnet

import "testing"

// Replies compared byte for byte with a Redis 7.0 server given the same
// commands (redis-server 7.0.15, RESP2): the types and words of the
// answers dkv gives as Redis does.
func TestRESPRepliesAsRedisGivesThem(t *testing.T) {
	r := startSingle(t, respConfig())
	for _, tc := range []struct{ send, want string }{
		// A name COMMAND INFO does not know is the null bulk string in
		// Redis 7's RESP2, not the null array.
		{respArray("COMMAND", "INFO", "nosuch"), "*1\r\n$-1\r\n"},
		{respArray("COMMAND", "INFO", "get", "nosuch"), "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n"},
		// COMMAND COUNT takes no argument.
		{respArray("COMMAND", "COUNT", "x"), "-ERR wrong number of arguments for 'command|count' command\r\n"},
		// CONFIG without a subcommand is an arity error, not an unknown
		// subcommand ''.
		{respArray("CONFIG"), "-ERR wrong number of arguments for 'config' command\r\n"},
		{"config\r\n", "-ERR wrong number of arguments for 'config' command\r\n"},
		{respArray("CONFIG", "GET", "save"), "*0\r\n"},
	} {
		c := dialRESP(t, r.addr)
		c.send(tc.send)
		c.expect(tc.want)
		c.nc.Close()
	}
}

// A connection whose first line is an inline command that dkv refuses by
// name (PROTOCOL's table lists them) is RESP, and gets that refusal, as
// one of a served command is: INCRBYFLOAT typed into telnet was taken for
// JSON and answered with a JSON bad_request line.
func TestRESPRefusedCommandsAreToldInline(t *testing.T) {
	r := startSingle(t, respConfig())
	for _, tc := range []struct{ send, want string }{
		{"INCRBYFLOAT k 1.5\r\n", "-ERR dkv does not serve INCRBYFLOAT: "},
		{"getex k\r\n", "-ERR dkv does not serve GETEX yet: "},
		{"ExpireTime k\r\n", "-ERR dkv does not serve EXPIRETIME yet: "},
		{"pexpiretime k\r\n", "-ERR dkv does not serve PEXPIRETIME yet: "},
	} {
		c := dialRESP(t, r.addr)
		c.send(tc.send)
		c.expect(tc.want)
		c.nc.Close()
	}
}
