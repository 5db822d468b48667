//go:build !unix

package client

import "syscall"

// peekSocket cannot look at the socket without reading it here, so a dead
// idle connection is found by the first request on it instead.
func peekSocket(raw syscall.RawConn, buf []byte) (int, error) { return 0, nil }

// tryWrite writes nothing here: every write goes to a goroutine.
func tryWrite(raw syscall.RawConn, buf []byte) (int, error) { return 0, nil }
