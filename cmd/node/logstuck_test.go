//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"dkv/client"
)

// fillPipe makes w's pipe as small as the kernel allows and fills it, so
// that the next write to it blocks until someone reads r.
func fillPipe(t *testing.T, w *os.File) {
	t.Helper()
	raw, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	const fSetPipeSz = 1031 // F_SETPIPE_SZ
	var werr error
	raw.Control(func(fd uintptr) {
		if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, 4096); e != 0 {
			werr = fmt.Errorf("F_SETPIPE_SZ: %v", e)
			return
		}
		if werr = syscall.SetNonblock(int(fd), true); werr != nil {
			return
		}
		page := make([]byte, 512)
		for {
			if _, err := syscall.Write(int(fd), page); err != nil {
				if !errors.Is(err, syscall.EAGAIN) {
					werr = err
				}
				break
			}
		}
		// The flag is the pipe's, which the server shares: its writes
		// must block, as they do on a full pipe nobody reads.
		if err := syscall.SetNonblock(int(fd), false); err != nil && werr == nil {
			werr = err
		}
	})
	if werr != nil {
		t.Fatal(werr)
	}
}

// A server whose standard error is a full pipe that nobody reads (but
// that is not closed: a log shipper that hangs) serves on: its log lines
// wait in a bounded buffer, and those past it are dropped and counted;
// once the reader is back the lines come, with a line that says how many
// were dropped. The log was written on the node's own goroutine, and the
// first line stopped the node (it never served).
func TestAStuckLogReaderDoesNotStopTheServer(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fillPipe(t, w)
	const addr = "127.0.0.1:24301"
	cmd := exec.Command(os.Args[0], "--port", "24301", "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), serverEnv+"=1")
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close() // the server holds it
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var c *client.KVClient
	for {
		if c, err = client.Dial(addr, client.WithRequestTimeout(20*time.Second)); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the server does not answer with its log stuck: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer c.Close()
	for i := range 20 {
		if err := c.Set(ctx, fmt.Sprint("k", i), "v"); err != nil {
			t.Fatalf("set with the log stuck: %v", err)
		}
	}
	if v, err := c.Get(ctx, "k19"); err != nil || v != "v" {
		t.Fatalf("get with the log stuck: %q, %v", v, err)
	}
	// SIGHUP logs a line each (nothing to reload): more than the buffer
	// holds.
	for range 4000 {
		cmd.Process.Signal(syscall.SIGHUP)
		time.Sleep(100 * time.Microsecond)
	}
	if err := c.Set(ctx, "after", "v"); err != nil {
		t.Fatalf("set after the flood of log lines: %v", err)
	}

	// The reader is back: the lines come, and the count of those dropped.
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var got []string
	timeout := time.After(30 * time.Second)
	for !strings.Contains(strings.Join(got, "\n"), "log lines were dropped") {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the log ended without a count of the lines dropped:\n%s", strings.Join(got, "\n"))
			}
			got = append(got, line)
		case <-timeout:
			t.Fatalf("no count of the lines dropped within 30 s; %d lines:\n%s", len(got), strings.Join(got, "\n"))
		}
	}
	t.Log(got[len(got)-1]) // the count
	// The server stops cleanly, its last lines written.
	cmd.Process.Signal(syscall.SIGTERM)
	for line := range lines {
		got = append(got, line)
	}
	if err := <-exited; err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	exited <- nil
	if s := strings.Join(got, "\n"); !strings.Contains(s, "shut down cleanly") || !strings.Contains(s, "dkv: starting single node") && !strings.Contains(s, "INFO starting single node") {
		t.Errorf("the log lacks its first line or its last:\n%s", s)
	}
}
