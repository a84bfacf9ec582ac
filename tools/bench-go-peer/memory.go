package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// runMemory runs a controller-runtime manager whose cache holds every Pod, with `controllers`
// no-op ConfigMap controllers, prints `ready <pods>` once the Pod cache holds -pods Pods and
// every controller's cache has synced, then runs until killed (the bench reads its RSS).
func runMemory(args []string) error {
	fs, kubeconfig := flags("memory")
	controllers := fs.Int("controllers", 1, "ConfigMap controllers to run (they share the manager's cache)")
	pods := fs.Int("pods", 0, "ready once the Pod cache holds this many Pods")
	if err := parse(fs, args, kubeconfig); err != nil {
		return err
	}
	if *controllers < 1 || *pods < 0 {
		return fmt.Errorf("-controllers must be at least 1 and -pods not negative")
	}
	mgr, err := newManager(*kubeconfig)
	if err != nil {
		return err
	}
	for i := range *controllers {
		if err := addController(mgr, fmt.Sprintf("bench-mem-%02d", i), 2, &reconciler{client: mgr.GetClient()}); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	informer, err := mgr.GetCache().GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return fmt.Errorf("the Pod informer: %w", err)
	}
	// Counted from the informer's events rather than listed, so counting copies nothing.
	var cached atomic.Int64
	_, err = informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { cached.Add(1) },
		DeleteFunc: func(any) { cached.Add(-1) },
	})
	if err != nil {
		return fmt.Errorf("watching the Pod informer: %w", err)
	}
	failed := make(chan error, 1)
	go func() { failed <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return fmt.Errorf("the manager's cache did not sync")
	}
	err = waitFor("filling the Pod cache", 5*time.Minute, func() (bool, string) {
		n := cached.Load()
		return n >= int64(*pods), fmt.Sprintf("%d of %d Pods cached", n, *pods)
	})
	if err != nil {
		return err
	}
	if _, err := fmt.Printf("ready %d\n", cached.Load()); err != nil {
		return err
	}
	return <-failed
}
