// Command k8s-proto-table vendors the Kubernetes generated.proto files the embedded API server decodes
// and writes the facts about each field that the protobuf wire format does not carry but Go's
// json.Marshal needs (JSON name, pointer, omitempty, omitzero, ...), plus which proto message each
// apiVersion/kind is.
//
// Run from the repository root (offline, from the Go module cache):
//
//	cd tools/k8s-proto-table && GOFLAGS=-mod=mod GOPROXY=off go run . ../../apiserver/proto
//
// It rewrites <dir>/k8s.io/**/generated.proto (comments stripped) and <dir>/json-fields.txt.
//
//	GOFLAGS=-mod=mod GOPROXY=off go run . fixtures ../../apiserver/tests/fixtures/protobuf
//
// writes Go-encoded protobuf bodies of objects that use every special type (fixtures.go), then, for every
// *.pb and *.bin body in that directory, <body>.json: what Go's protobuf decoder and json.Marshal make of it.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// The API groups served or accepted by the embedded API server; their generated.proto files and
// everything they import are vendored.
var adders = []func(*runtime.Scheme) error{
	corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme,
	networkingv1.AddToScheme, rbacv1.AddToScheme, certificatesv1.AddToScheme, autoscalingv1.AddToScheme,
	autoscalingv2.AddToScheme, discoveryv1.AddToScheme, coordinationv1.AddToScheme, eventsv1.AddToScheme,
	authenticationv1.AddToScheme, authorizationv1.AddToScheme, apiextensionsv1.AddToScheme,
	apiregistrationv1.AddToScheme,
}

var roots = []string{
	"k8s.io/api/core/v1", "k8s.io/api/apps/v1", "k8s.io/api/batch/v1", "k8s.io/api/policy/v1",
	"k8s.io/api/networking/v1", "k8s.io/api/rbac/v1", "k8s.io/api/certificates/v1", "k8s.io/api/autoscaling/v1",
	"k8s.io/api/autoscaling/v2", "k8s.io/api/discovery/v1", "k8s.io/api/coordination/v1", "k8s.io/api/events/v1",
	"k8s.io/api/authentication/v1", "k8s.io/api/authorization/v1", "k8s.io/apimachinery/pkg/apis/meta/v1",
	"k8s.io/apimachinery/pkg/runtime", "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1",
	"k8s.io/kube-aggregator/pkg/apis/apiregistration/v1",
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "fixtures" {
		if err := fixtures(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "fixtures:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: k8s-proto-table <apiserver/proto directory> | fixtures <fixture directory>")
		os.Exit(2)
	}
	out := os.Args[1]
	protoPkgs, err := vendor(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vendoring protos:", err)
		os.Exit(1)
	}
	if err := writeTable(filepath.Join(out, "json-fields.txt"), protoPkgs); err != nil {
		fmt.Fprintln(os.Stderr, "writing the table:", err)
		os.Exit(1)
	}
}

// moduleDirs maps each k8s.io module to its directory in the module cache.
func moduleDirs() (map[string]string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Path}} {{.Dir}}",
		"k8s.io/api", "k8s.io/apimachinery", "k8s.io/apiextensions-apiserver", "k8s.io/kube-aggregator")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m: %w", err)
	}
	dirs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		p, d, _ := strings.Cut(l, " ")
		dirs[p] = d
	}
	return dirs, nil
}

var (
	importRe  = regexp.MustCompile(`(?m)^import "([^"]+)";`)
	packageRe = regexp.MustCompile(`(?m)^package ([\w.]+);`)
	blockRe   = regexp.MustCompile(`(?s)/\*.*?\*/`)
)

// vendor copies the import closure of the roots' generated.proto files, without comments, and returns
// the proto packages it wrote.
func vendor(out string) (map[string]bool, error) {
	dirs, err := moduleDirs()
	if err != nil {
		return nil, err
	}
	source := func(p string) (string, error) {
		for mod, dir := range dirs {
			if rest, ok := strings.CutPrefix(p, mod+"/"); ok {
				return filepath.Join(dir, rest), nil
			}
		}
		return "", fmt.Errorf("no module for %s", p)
	}
	if err := os.RemoveAll(filepath.Join(out, "k8s.io")); err != nil {
		return nil, err
	}
	pkgs := map[string]bool{}
	seen := map[string]bool{}
	var todo []string
	for _, r := range roots {
		todo = append(todo, r+"/generated.proto")
	}
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		src, err := source(p)
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		text := blockRe.ReplaceAllString(string(b), "")
		for _, m := range importRe.FindAllStringSubmatch(text, -1) {
			todo = append(todo, m[1])
		}
		if m := packageRe.FindStringSubmatch(text); m != nil {
			pkgs[m[1]] = true
		}
		var kept []string
		for _, l := range strings.Split(text, "\n") {
			t := strings.TrimSpace(l)
			if t == "" || strings.HasPrefix(t, "//") {
				continue
			}
			kept = append(kept, l)
		}
		dst := filepath.Join(out, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, []byte(strings.Join(kept, "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	return pkgs, nil
}

// protoName is the proto message of a Go type (`k8s.io/api/core/v1.Pod` -> `k8s.io.api.core.v1.Pod`).
func protoName(t reflect.Type) string {
	pkg := strings.ReplaceAll(strings.ReplaceAll(t.PkgPath(), "/", "."), "-", "_")
	return pkg + "." + t.Name()
}

// flags: P pointer, O omitempty, Z omitzero, S non-pointer struct, N slice or map (nil-able), "-" none.
func fieldLines(t reflect.Type, pkgs map[string]bool, seen map[reflect.Type]bool, lines *[]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return
	}
	seen[t] = true
	msg := protoName(t)
	pkg := msg[:strings.LastIndex(msg, ".")]
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		fieldLines(f.Type, pkgs, seen, lines)
		pb := f.Tag.Get("protobuf")
		if pb == "" || !pkgs[pkg] {
			continue
		}
		parts := strings.Split(pb, ",")
		if len(parts) < 2 {
			continue
		}
		num, err := strconv.Atoi(parts[1])
		if err != nil {
			continue
		}
		tag := strings.Split(f.Tag.Get("json"), ",")
		name := tag[0]
		if name == "" {
			name = "~" // json:",inline": flattened into the parent
		}
		flags := ""
		switch f.Type.Kind() {
		case reflect.Pointer:
			flags += "P"
		case reflect.Struct:
			flags += "S"
		case reflect.Slice, reflect.Map:
			flags += "N"
		}
		for _, o := range tag[1:] {
			switch o {
			case "omitempty":
				flags += "O"
			case "omitzero":
				flags += "Z"
			}
		}
		if flags == "" {
			flags = "-"
		}
		*lines = append(*lines, fmt.Sprintf("%s %d %s %s", msg, num, name, flags))
	}
}

// newScheme registers every served group, and meta.k8s.io/v1's DeleteOptions and friends.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range adders {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Group: "meta.k8s.io", Version: "v1"})
	return s, nil
}

func writeTable(path string, pkgs map[string]bool) error {
	s, err := newScheme()
	if err != nil {
		return err
	}
	var kinds, fields []string
	seen := map[reflect.Type]bool{}
	for gvk, t := range s.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal {
			continue
		}
		fieldLines(t, pkgs, seen, &fields)
		msg := protoName(t)
		if !pkgs[msg[:strings.LastIndex(msg, ".")]] {
			continue
		}
		kinds = append(kinds, fmt.Sprintf("= %s %s %s", gvk.GroupVersion().String(), gvk.Kind, msg))
	}
	sort.Strings(kinds)
	sort.Strings(fields)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "# Generated by tools/k8s-proto-table from k8s.io/* v0.37.2; do not edit.")
	fmt.Fprintln(w, "# '= <apiVersion> <kind> <proto message>': the message of a kind.")
	fmt.Fprintln(w, "# '<proto message> <field number> <json name> <flags>': how Go's json.Marshal writes a field;")
	fmt.Fprintln(w, "#   json name '~' is an inline embed, '-' is never written; flags: P pointer, S struct,")
	fmt.Fprintln(w, "#   N slice or map, O omitempty, Z omitzero, '-' none of them.")
	for _, l := range kinds {
		fmt.Fprintln(w, l)
	}
	for _, l := range fields {
		fmt.Fprintln(w, l)
	}
	return w.Flush()
}
