package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

// echoServerCommand is a hidden benchmark: this binary, run again as a
// process that answers every line with a fixed response. A client's round
// trips to it are the floor under any request to a server on this machine:
// two processes woken by loopback TCP, with no work in between.
const echoServerCommand = "_echo-server"

// echoStartTimeout bounds the wait for the echo process's address.
const echoStartTimeout = 10 * time.Second

func runEchoServer(args []string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				if _, err := br.ReadSlice('\n'); err != nil {
					return
				}
				if _, err := c.Write([]byte("{\"ok\":true}\n")); err != nil {
					return
				}
			}
		}()
	}
}

// echoFloor starts the echo server process and returns a function that
// measures the mean round trip of one client for d, and a stop function.
func echoFloor() (measure func(d time.Duration) (time.Duration, error), stop func(), err error) {
	cmd := exec.Command(os.Args[0], echoServerCommand)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	// The echo process prints its address first; anything else (say, an
	// executable that does not know the hidden command) must not hang us.
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	var addr string
	select {
	case addr = <-got:
	case <-time.After(echoStartTimeout):
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		stop()
		return nil, nil, fmt.Errorf("echo server %s %s did not print its address: %q", os.Args[0], echoServerCommand, addr)
	}
	line := `{"op":"set","key":"key00000001","value":"` + strings.Repeat("v", 100) + `"}` + "\n"
	measure = func(d time.Duration) (time.Duration, error) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		n := 0
		start := time.Now()
		for time.Since(start) < d {
			if _, err := nc.Write([]byte(line)); err != nil {
				return 0, err
			}
			if _, err := br.ReadSlice('\n'); err != nil {
				return 0, err
			}
			n++
		}
		return time.Since(start) / time.Duration(n), nil
	}
	return measure, stop, nil
}
