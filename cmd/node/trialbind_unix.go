//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// errTrialBound stops a trial listen after its bind succeeded.
var errTrialBound = errors.New("trial bind succeeded")

// trialBind reports whether addr can be bound, without ever listening on
// it: a socket that listened, even for a moment, would complete a client's
// handshake and then reset it on close, and a client dialling during
// recovery must be refused instead. The bind happens inside the listen's
// Control hook, after the runtime set the same socket options as the real
// listener (SO_REUSEADDR, dual stack), and the hook's error then stops the
// runtime before listen(2).
func trialBind(addr string) error {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		sa, err := sockaddr(network, address)
		if err != nil {
			return err
		}
		var bindErr error
		if err := c.Control(func(fd uintptr) { bindErr = syscall.Bind(int(fd), sa) }); err != nil {
			return err
		}
		if bindErr != nil {
			return fmt.Errorf("bind: %w", bindErr)
		}
		return errTrialBound
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err == nil {
		ln.Close() // unreachable: the hook always returns an error
		return nil
	}
	if errors.Is(err, errTrialBound) {
		return nil
	}
	return err
}

// sockaddr turns the resolved address the runtime hands the Control hook
// into the form bind(2) takes.
func sockaddr(network, address string) (syscall.Sockaddr, error) {
	a, err := net.ResolveTCPAddr(network, address)
	if err != nil {
		return nil, err
	}
	if network == "tcp4" {
		sa := &syscall.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], a.IP.To4())
		return sa, nil
	}
	sa := &syscall.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], a.IP.To16())
	if a.Zone != "" {
		ifi, err := net.InterfaceByName(a.Zone)
		if err != nil {
			return nil, err
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
}
