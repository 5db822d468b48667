//go:build !linux

package realnet

import (
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// EventLoopsSupported says whether HostConfig.EventLoops may be above 0
// here: the event loops are built on epoll, which only Linux has; elsewhere
// every connection has a reader and a writer goroutine.
const EventLoopsSupported = false

func defaultEventLoops() int { return 0 }

// eloop is never made here: HostConfig.validate refuses EventLoops > 0.
type eloop struct {
	// (gathering; only touched with a loop)
	awaited      atomic.Int64
	passWrites   bool
	passRequests int
}

func (lp *eloop) kick(c *conn)      { panic("realnet: no event loops on this system") }
func (lp *eloop) adoptConn(c *conn) { panic("realnet: no event loops on this system") }
func (lp *eloop) wake()             { panic("realnet: no event loops on this system") }

func (h *Host) startLoops() error {
	if h.cfg.EventLoops > 0 {
		return errors.New("realnet: event loops need Linux (epoll)")
	}
	return nil
}

func (h *Host) stopLoops() {}

func (h *Host) loopConn(nc net.Conn) (*conn, error) { return nil, nil }

func (h *Host) handshakeForLoop(c *conn) { panic("realnet: no event loops on this system") }

func (h *Host) adoptFrames(nc net.Conn, frameMax int, idle time.Duration, deliver func(msg []byte), stop <-chan struct{}) (frameStream, error) {
	return nil, nil
}
