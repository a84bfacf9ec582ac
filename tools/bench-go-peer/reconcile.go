package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// annotation is what the realistic reconcile sets (the plugin and the kube-rs peer set the same).
const annotation = "bench.kubewasm.io/reconciled"

// mergePatch sets the annotation.
var mergePatch = []byte(`{"metadata":{"annotations":{"` + annotation + `":"true"}}}`)

// reconcileResult is the one line of `bench-go-peer reconcile`.
type reconcileResult struct {
	// Keys reconciled (distinct).
	Keys int `json:"keys"`
	// Secs from the first reconcile's start to the Keys-th distinct key done.
	Secs float64 `json:"secs"`
	// CPUNanos this process spent from the manager's start to the Keys-th key done.
	CPUNanos int64 `json:"cpu_ns"`
}

// probe records when the first reconcile started and when the n-th distinct key finished.
type probe struct {
	want     int64
	first    atomic.Int64 // unix nanoseconds; 0 until the first reconcile
	distinct atomic.Int64
	seen     sync.Map
	done     chan time.Time
}

func newProbe(want int) *probe {
	return &probe{want: int64(want), done: make(chan time.Time, 1)}
}

func (p *probe) started() {
	p.first.CompareAndSwap(0, time.Now().UnixNano())
}

func (p *probe) finished(key string) {
	if _, loaded := p.seen.LoadOrStore(key, struct{}{}); loaded {
		return
	}
	if p.distinct.Add(1) == p.want {
		p.done <- time.Now()
	}
}

// reconciler is the bench-peer-ops plugin's logic as a controller-runtime Reconciler:
// `patch-*` ConfigMaps are read from the manager's cache (a deep copy into cm) and get the
// annotation once by a merge patch; any other key is a no-op.
type reconciler struct {
	client client.Client
	probe  *probe
}

func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if r.probe != nil {
		r.probe.started()
		defer r.probe.finished(req.String())
	}
	if !strings.HasPrefix(req.Name, "patch-") {
		return ctrl.Result{}, nil
	}
	var cm corev1.ConfigMap
	if err := r.client.Get(ctx, req.NamespacedName, &cm); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if _, done := cm.Annotations[annotation]; done {
		return ctrl.Result{}, nil
	}
	if err := r.client.Patch(ctx, &cm, client.RawPatch(types.MergePatchType, mergePatch)); err != nil {
		return ctrl.Result{}, fmt.Errorf("patching ConfigMap %s: %w", req, err)
	}
	return ctrl.Result{}, nil
}

// newManager is a controller-runtime manager without metrics, health probes or leader
// election (the kube-rs peer has none either).
func newManager(kubeconfig string) (ctrl.Manager, error) {
	ctrl.SetLogger(logr.Discard())
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the controller-runtime manager: %w", err)
	}
	return mgr, nil
}

// addController adds a ConfigMap controller named name running r.
func addController(mgr ctrl.Manager, name string, concurrency int, r *reconciler) error {
	skip := true
	err := ctrl.NewControllerManagedBy(mgr).
		For(&corev1.ConfigMap{}).
		Named(name).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency, SkipNameValidation: &skip}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("adding controller %s: %w", name, err)
	}
	return nil
}

// processCPU is the CPU time of this whole process (every thread) so far.
func processCPU() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("reading the process CPU time: %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

func runReconcile(args []string) error {
	fs, kubeconfig := flags("reconcile")
	keys := fs.Int("keys", 0, "distinct keys to reconcile before reporting (required)")
	concurrency := fs.Int("concurrency", 2, "keys reconciled at once")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	if err := parse(fs, args, kubeconfig); err != nil {
		return err
	}
	if *keys < 1 || *concurrency < 1 {
		return fmt.Errorf("-keys and -concurrency must be at least 1")
	}
	mgr, err := newManager(*kubeconfig)
	if err != nil {
		return err
	}
	p := newProbe(*keys)
	if err := addController(mgr, "bench-configmaps", *concurrency, &reconciler{client: mgr.GetClient(), probe: p}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cpuStart, err := processCPU()
	if err != nil {
		return err
	}
	failed := make(chan error, 1)
	go func() { failed <- mgr.Start(ctx) }()
	var end time.Time
	select {
	case end = <-p.done:
	case err := <-failed:
		return fmt.Errorf("the manager stopped: %v", err)
	case <-time.After(*timeout):
		return fmt.Errorf("only %d of %d keys reconciled after %s", p.distinct.Load(), *keys, *timeout)
	}
	cpuEnd, err := processCPU()
	if err != nil {
		return err
	}
	first := time.Unix(0, p.first.Load())
	return emit(reconcileResult{
		Keys:     *keys,
		Secs:     end.Sub(first).Seconds(),
		CPUNanos: (cpuEnd - cpuStart).Nanoseconds(),
	})
}
