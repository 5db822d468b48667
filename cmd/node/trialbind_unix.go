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
// into the form bind(2) takes. network names the socket's family, not the
// address's: for a wildcard host ("0.0.0.0", "::" or none) the runtime
// makes a dual-stack socket and passes "tcp6" with the address
// "0.0.0.0:port". So the address is resolved as plain "tcp", which takes
// either family, and then put in the socket's family, as the runtime's own
// bind does (ipToSockaddrInet6): the IPv4 wildcard becomes ::, which on a
// dual-stack socket takes IPv4 too; any other IPv4 address becomes its
// IPv4-mapped form.
func sockaddr(network, address string) (syscall.Sockaddr, error) {
	a, err := net.ResolveTCPAddr("tcp", address)
	if err != nil {
		return nil, err
	}
	if network == "tcp4" {
		sa := &syscall.SockaddrInet4{Port: a.Port}
		if a.IP != nil {
			ip4 := a.IP.To4()
			if ip4 == nil {
				return nil, fmt.Errorf("address %s: not an IPv4 address for an IPv4 socket", address)
			}
			copy(sa.Addr[:], ip4)
		}
		return sa, nil
	}
	ip := a.IP
	if ip.Equal(net.IPv4zero) {
		ip = net.IPv6unspecified
	}
	sa := &syscall.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], ip.To16()) // nil (no host) copies nothing: ::
	if a.Zone != "" {
		ifi, err := net.InterfaceByName(a.Zone)
		if err != nil {
			return nil, err
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
}
