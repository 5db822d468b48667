// Command bench measures dkv against real server processes.
//
//	go run ./cmd/bench throughput   # durable Set throughput and latency, with baselines
//	go run ./cmd/bench durability   # SIGKILL the server at random, check every acknowledged write
//	go run ./cmd/bench cluster      # durable Sets through a 3-node cluster's leader, beside a single node
//	go run ./cmd/bench failover     # SIGKILL the leader under load; time to the next acknowledged write
//	go run ./cmd/bench mesh         # durable Sets spread over a 3-node mesh, beside a single node; lag; catch-up
//	go run ./cmd/bench index        # durable writes with and without indexes; query latency; similarity recall
//	go run ./cmd/bench metrics      # durable Sets into a node with --metrics-addr (scraped) beside one without
//	go run ./cmd/bench compare      # dkv (JSON and RESP) beside Redis with appendfsync always, one load generator
//
// Every figure is reported next to a baseline measured in the same run, as a
// ratio, because the machines it runs on are shared and noisy.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: go run ./cmd/bench <benchmark> [flags]

benchmarks:
  throughput   durable Sets from concurrent clients into stores of 0, 100k and 1M keys,
               against the raw 4 KiB write+fdatasync rate of the same disk
  durability   a writer hammers Set and BulkSet while the server is SIGKILLed at random;
               checks that no acknowledged write is lost and no BulkSet is partly applied
  cluster      durable Sets from 50 clients through a 3-node cluster's leader, beside the
               same load on a single node in alternating slices of the same run
  failover     SIGKILL a 3-node cluster's leader N times under a light write load; time
               from the kill to the first write acknowledged by the next leader
  mesh         durable Sets from 50 clients spread over a 3-node mesh, beside a single node
               in alternating slices; replication lag; catch-up of a node that missed 100k keys
  index        durable writes of ~1 KB English text with and without --enable-indexes in
               alternating slices; indexing rate; search latency and similarity recall@10 on 100k values
  metrics      durable Sets from 50 clients into a single node with --metrics-addr, scraped every
               second, beside one without metrics in alternating slices of the same run
  compare      dkv (JSON and RESP) beside Redis with appendfsync always (when redis-server is
               installed), one load generator, servers alternating round by round: SET c1, c50,
               c50 x16, GET c50, c50 x16, MSET of 10; throughput, latency, CPU/op, RSS; ratios

run "go run ./cmd/bench <benchmark> -h" for its flags
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "throughput":
		return runThroughput(args[1:], stdout, stderr)
	case "durability":
		return runDurability(args[1:], stdout, stderr)
	case "cluster":
		return runClusterBench(args[1:], stdout, stderr)
	case "failover":
		return runFailover(args[1:], stdout, stderr)
	case "mesh":
		return runMeshBench(args[1:], stdout, stderr)
	case "index":
		return runIndexBench(args[1:], stdout, stderr)
	case "metrics":
		return runMetricsBench(args[1:], stdout, stderr)
	case "compare":
		return runCompare(args[1:], stdout, stderr)
	case echoServerCommand:
		return runEchoServer(args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown benchmark %q\n\n%s", args[0], usage)
		return 2
	}
}
