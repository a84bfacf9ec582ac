package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
)

// nodeIndex indexes Pods by spec.nodeName, as a Go controller that lists the Pods of a node
// adds (the kubewasm side has the host's index on the same field).
const nodeIndex = "spec.nodeName"

// cacheResult is one line of `bench-go-peer cache`: the samples of one operation.
type cacheResult struct {
	// ID names the operation: get, get.decode, list.<namespace|index|label>.<objects|copied|keys|count>, list.decode.
	ID string `json:"id"`
	// What the operation does, for the report's label.
	What string `json:"what"`
	// PerSample is how many operations one sample ran (each sample is their time / PerSample).
	PerSample int `json:"per_sample"`
	// Found is how many Pods (or bytes, for a decode) one operation saw: the bench checks it.
	Found int `json:"found"`
	// Nanos holds the samples: nanoseconds per operation.
	Nanos []float64 `json:"ns"`
}

func runCache(args []string) error {
	fs, kubeconfig := flags("cache")
	pods := fs.Int("pods", 0, "wait until the cache holds this many Pods")
	namespace := fs.String("namespace", "bench", "namespace of the listed Pods")
	node := fs.String("node", "node-0", "spec.nodeName of the listed Pods")
	app := fs.String("app", "bench", "app label of the listed Pods")
	get := fs.String("get", "pod-0", "name of the Pod the get reads")
	getSamples := fs.Int("get-samples", 2000, "samples per get figure")
	listSamples := fs.Int("list-samples", 100, "samples per list figure")
	if err := parse(fs, args, kubeconfig); err != nil {
		return err
	}
	if *getSamples < 1 || *listSamples < 1 {
		return fmt.Errorf("-get-samples and -list-samples must be at least 1")
	}
	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building a clientset: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	factory := informers.NewSharedInformerFactory(cs, 0)
	podInformer := factory.Core().V1().Pods()
	informer := podInformer.Informer()
	err = informer.AddIndexers(cache.Indexers{nodeIndex: func(obj any) ([]string, error) {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Spec.NodeName == "" {
			return nil, nil
		}
		return []string{pod.Spec.NodeName}, nil
	}})
	if err != nil {
		return fmt.Errorf("adding the spec.nodeName index: %w", err)
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("the %v informer did not sync", typ)
		}
	}
	indexer := informer.GetIndexer()
	err = waitFor("filling the Pod cache", 5*time.Minute, func() (bool, string) {
		n := len(indexer.ListKeys())
		return n >= *pods, fmt.Sprintf("%d of %d Pods cached", n, *pods)
	})
	if err != nil {
		return err
	}
	lister := podInformer.Lister()
	selector := labels.SelectorFromSet(labels.Set{"app": *app})

	// Get: what a controller does with a cache hit before changing the object.
	var sink *corev1.Pod
	getNanos, err := samples(*getSamples, 100, func() error {
		pod, err := lister.Pods(*namespace).Get(*get)
		if err != nil {
			return err
		}
		sink = pod.DeepCopy()
		return nil
	})
	if err != nil {
		return fmt.Errorf("get %s/%s: %w", *namespace, *get, err)
	}
	got := 0
	if sink != nil && sink.Name == *get {
		got = 1
	}
	if err := emit(cacheResult{"get", "client-go lister Get + DeepCopy", 100, got, getNanos}); err != nil {
		return err
	}

	// Decode: the same Pod's JSON, as the API server sends it, through client-go's decoder.
	raw, err := cs.CoreV1().RESTClient().Get().Namespace(*namespace).Resource("pods").Name(*get).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("reading %s/%s as JSON: %w", *namespace, *get, err)
	}
	decoder := scheme.Codecs.UniversalDeserializer()
	// A decode is the slow part of a Go read (a Pod takes about 100 µs, 1k Pods 100 ms or more on
	// 2 cores): fewer samples of it keep quick mode quick.
	decodeNanos, err := samples(min(*getSamples, 500), 10, func() error {
		_, _, err := decoder.Decode(raw, nil, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("decoding %s/%s: %w", *namespace, *get, err)
	}
	if err := emit(cacheResult{"get.decode", "client-go's decoder (scheme.Codecs) on the Pod's JSON", 10, len(raw), decodeNanos}); err != nil {
		return err
	}

	// Lists: by namespace (the lister's namespace index), by the spec.nodeName index, by label
	// selector within the namespace; each as objects, deep copies, keys and a count.
	lists := map[string]func() ([]*corev1.Pod, error){
		"namespace": func() ([]*corev1.Pod, error) {
			return lister.Pods(*namespace).List(labels.Everything())
		},
		"index": func() ([]*corev1.Pod, error) {
			objs, err := indexer.ByIndex(nodeIndex, *node)
			if err != nil {
				return nil, err
			}
			out := make([]*corev1.Pod, 0, len(objs))
			for _, o := range objs {
				if p, ok := o.(*corev1.Pod); ok {
					out = append(out, p)
				}
			}
			return out, nil
		},
		"label": func() ([]*corev1.Pod, error) {
			return lister.Pods(*namespace).List(selector)
		},
	}
	keys := map[string]func() ([]string, error){
		"namespace": func() ([]string, error) { return indexer.IndexKeys(cache.NamespaceIndex, *namespace) },
		"index":     func() ([]string, error) { return indexer.IndexKeys(nodeIndex, *node) },
		"label": func() ([]string, error) {
			pods, err := lister.Pods(*namespace).List(selector)
			if err != nil {
				return nil, err
			}
			out := make([]string, 0, len(pods))
			for _, p := range pods {
				k, err := cache.MetaNamespaceKeyFunc(p)
				if err != nil {
					return nil, err
				}
				out = append(out, k)
			}
			return out, nil
		},
	}
	how := map[string]string{
		"namespace": "Pods(namespace).List (the namespace index)",
		"index":     "Indexer.ByIndex(spec.nodeName)",
		"label":     "Pods(namespace).List(app=" + *app + ")",
	}
	keysHow := map[string]string{
		"namespace": "Indexer.IndexKeys(namespace)",
		"index":     "Indexer.IndexKeys(spec.nodeName)",
		"label":     how["label"] + " + MetaNamespaceKeyFunc per Pod",
	}
	for _, by := range []string{"namespace", "index", "label"} {
		list, listKeys := lists[by], keys[by]
		found := 0
		objectNanos, err := samples(*listSamples, 5, func() error {
			pods, err := list()
			found = len(pods)
			return err
		})
		if err != nil {
			return fmt.Errorf("list by %s: %w", by, err)
		}
		if err := emit(cacheResult{"list." + by + ".objects", "client-go lister " + how[by], 5, found, objectNanos}); err != nil {
			return err
		}
		copiedNanos, err := samples(*listSamples, 1, func() error {
			pods, err := list()
			copies := make([]*corev1.Pod, len(pods))
			for i, p := range pods {
				copies[i] = p.DeepCopy()
			}
			found = len(copies)
			return err
		})
		if err != nil {
			return fmt.Errorf("list by %s: %w", by, err)
		}
		if err := emit(cacheResult{"list." + by + ".copied", "client-go lister " + how[by] + " + DeepCopy of each Pod", 1, found, copiedNanos}); err != nil {
			return err
		}
		keyNanos, err := samples(*listSamples, 10, func() error {
			k, err := listKeys()
			found = len(k)
			return err
		})
		if err != nil {
			return fmt.Errorf("keys by %s: %w", by, err)
		}
		if err := emit(cacheResult{"list." + by + ".keys", "client-go " + keysHow[by], 10, found, keyNanos}); err != nil {
			return err
		}
		countNanos, err := samples(*listSamples, 100, func() error {
			k, err := listKeys()
			found = len(k)
			return err
		})
		if err != nil {
			return fmt.Errorf("count by %s: %w", by, err)
		}
		if err := emit(cacheResult{"list." + by + ".count", "client-go " + keysHow[by] + ", its length", 100, found, countNanos}); err != nil {
			return err
		}
	}

	// Decode of the namespace's list, as the API server sends it.
	rawList, err := cs.CoreV1().RESTClient().Get().Namespace(*namespace).Resource("pods").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("listing namespace %s as JSON: %w", *namespace, err)
	}
	listDecodeNanos, err := samples(min(*listSamples, 30), 1, func() error {
		_, _, err := decoder.Decode(rawList, nil, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("decoding the Pod list: %w", err)
	}
	return emit(cacheResult{"list.decode", "client-go's decoder (scheme.Codecs) on the namespace's PodList JSON", 1, len(rawList), listDecodeNanos})
}

// samples runs op perSample times for each of n samples; each sample is the loop's time
// divided by perSample, in nanoseconds. The first error ends it.
func samples(n, perSample int, op func() error) ([]float64, error) {
	out := make([]float64, 0, n)
	for range n {
		start := time.Now()
		for range perSample {
			if err := op(); err != nil {
				return nil, err
			}
		}
		out = append(out, float64(time.Since(start).Nanoseconds())/float64(perSample))
	}
	return out, nil
}
