// Command bench-go-peer is the Go peer of kubewasm's benchmark suite (bench/README.md): the
// same reads and the same reconcile as the kubewasm plugin and the kube-rs peer, written as a Go
// controller would be (client-go SharedInformerFactory + lister, a controller-runtime
// Reconciler), run against the bench's embedded API server.
//
// kubewasm-bench spawns it once per measurement with a kubeconfig and reads what it measured
// from its stdout, one JSON object per line:
//
//	bench-go-peer cache     -kubeconfig K -pods 2000 -get-samples 2000 -list-samples 100
//	bench-go-peer reconcile -kubeconfig K -keys 10000 -concurrency 2
//	bench-go-peer memory    -kubeconfig K -controllers 10 -pods 10000
//
// Errors go to stderr and end the process with status 1 (2 for bad arguments).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "cache":
		err = runCache(os.Args[2:])
	case "reconcile":
		err = runReconcile(os.Args[2:])
	case "memory":
		err = runMemory(os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage(os.Stdout)
		return
	default:
		fmt.Fprintf(os.Stderr, "bench-go-peer: unknown command %q\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-go-peer %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: bench-go-peer cache|reconcile|memory -kubeconfig FILE [flags]

  cache      client-go lister: Get (with DeepCopy) and lists of 1k Pods, timed in loops
  reconcile  controller-runtime Reconciler: get from the cache + merge patch; keys/s and CPU
  memory     controller-runtime cache of every Pod + N ConfigMap controllers; prints "ready"

Run "bench-go-peer COMMAND -h" for a command's flags.`)
}

// flags returns a flag set for command name with the -kubeconfig flag every command takes.
func flags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("bench-go-peer "+name, flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the API server to use (required)")
	return fs, kubeconfig
}

// parse parses args into fs and checks that a kubeconfig was given.
func parse(fs *flag.FlagSet, args []string, kubeconfig *string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *kubeconfig == "" {
		return fmt.Errorf("-kubeconfig is required")
	}
	return nil
}

// restConfig loads kubeconfig without client-side rate limiting: the kube-rs peer and kubewasm
// have none, and client-go's default (5 requests/s) would measure the limiter, not the client.
func restConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS = 1e6
	cfg.Burst = 1e6
	cfg.UserAgent = "bench-go-peer"
	return cfg, nil
}

// emit writes v as one JSON line on stdout.
func emit(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding a result: %w", err)
	}
	_, err = fmt.Fprintf(os.Stdout, "%s\n", line)
	return err
}

// waitFor polls cond every 2 ms until it holds, or fails after timeout saying what was awaited.
func waitFor(what string, timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not done after %s (%s)", what, timeout, state)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
