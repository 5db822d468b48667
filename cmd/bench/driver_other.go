//go:build !linux

package main

import (
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// epollDriverSupported: there is no epoll here; --driver goroutines.
const epollDriverSupported = false

func driveEpoll(conns []net.Conn, proto wireProto, load compareLoad, space int, value []byte, seed uint64,
	measuring, stop *atomic.Bool, results []clientResult, deadline time.Time) error {
	return errors.New("the epoll driver runs on Linux only")
}

// memoryFS is "" where the file system's type is not looked at.
func memoryFS(dir string) string { return "" }
