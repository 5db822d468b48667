package realnet

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls on non-blocking descriptors that every request makes
// (a socket's recv and send, the epoll_wait that returns at once, the
// eventfd's kick) are made raw: without the runtime's entersyscall and
// exitsyscall, which exist for a call that may block and so may need its
// processor handed to another thread. These cannot block. Skipping the
// wrappers saves more than their own cost: entersyscall wakes the
// runtime's sysmon thread from its deep sleep (which it takes whenever
// every processor is idle, as a server waiting on its clients is many
// times a millisecond), and a woken sysmon ticks every 20 µs for a
// millisecond or more. Measured at GET with 50 clients, against the
// wrapped calls in alternating runs: about 8% less server CPU per op and
// a fifth fewer context switches (docs/PERFORMANCE.md, Against Redis).
// Calls that may block (the log's write, close, accept) keep the
// wrappers; so does the fsync, except a waiting loop's inline one
// (syncFile.syncHeld), whose loop holds its processor anyway.

// readNonblock is read(2) on a non-blocking descriptor.
func readNonblock(fd int, b []byte) (int, error) {
	n, err := rawRW(unix.SYS_READ, fd, b)
	if n > 0 {
		raceWrote(b[:n])
	}
	return n, err
}

// writeNonblock is write(2) on a non-blocking descriptor.
func writeNonblock(fd int, b []byte) (int, error) {
	raceReading(b)
	return rawRW(unix.SYS_WRITE, fd, b)
}

// recvNonblock is recv(2) on a non-blocking socket: read(2) without the
// generic file layer that read and write pass through before the
// socket's own code. sendNonblock is send(2), with
// MSG_NOSIGNAL: a write to a peer that has gone answers EPIPE without
// raising SIGPIPE, which write(2) raises and the runtime then ignores. On
// a loopback TCP pair a send and a recv of 108 bytes cost 0.01–0.44 µs
// less than a write and a read (six runs of each, alternating in one
// process; BenchmarkSocketCalls measures it), 2–3% of a GET's server
// CPU.
func recvNonblock(fd int, b []byte) (int, error) {
	n, err := rawSocketCall(unix.SYS_RECVFROM, fd, b, 0)
	if n > 0 {
		raceWrote(b[:n])
	}
	return n, err
}

// sendNonblock: see recvNonblock.
func sendNonblock(fd int, b []byte) (int, error) {
	raceReading(b)
	return rawSocketCall(unix.SYS_SENDTO, fd, b, unix.MSG_NOSIGNAL)
}

// rawSocketCall is recvfrom(2) or sendto(2) without an address.
func rawSocketCall(trap uintptr, fd int, b []byte, flags int) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, e := unix.RawSyscall6(trap, uintptr(fd), uintptr(p), uintptr(len(b)), uintptr(flags), 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func rawRW(trap uintptr, fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(p), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// epollWait is epoll_wait(2). With a timeout of 0 it never blocks; a loop
// that holds its processor anyway (Host.loopsWait) blocks in it raw, which
// the runtime sees as running code: a signal (the collector's preemption,
// say) ends the wait with EINTR, never restarted. (epoll_pwait without a
// signal mask is epoll_wait, and exists on every Linux architecture;
// epoll_wait does not.)
func epollWait(epfd int, events []unix.EpollEvent, timeoutMs int) (int, error) {
	var p unsafe.Pointer
	if len(events) > 0 {
		p = unsafe.Pointer(&events[0])
	}
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(p), uintptr(len(events)), uintptr(timeoutMs), 0, 0)
	if e != 0 {
		return -1, e
	}
	if n > 0 {
		raceWrote(unsafe.Slice((*byte)(p), int(n)*int(unsafe.Sizeof(events[0]))))
	}
	return int(n), nil
}

// epollWaitFor is epollWait with a timeout finer than a millisecond:
// epoll_pwait2(2), Linux 5.11 and later. Where the kernel lacks it, it
// returns ENOSYS.
func epollWaitFor(epfd int, events []unix.EpollEvent, timeout time.Duration) (int, error) {
	var p unsafe.Pointer
	if len(events) > 0 {
		p = unsafe.Pointer(&events[0])
	}
	ts := unix.NsecToTimespec(int64(max(timeout, 0)))
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT2, uintptr(epfd), uintptr(p), uintptr(len(events)), uintptr(unsafe.Pointer(&ts)), 0, 0)
	if e != 0 {
		return -1, e
	}
	if n > 0 {
		raceWrote(unsafe.Slice((*byte)(p), int(n)*int(unsafe.Sizeof(events[0]))))
	}
	return int(n), nil
}
