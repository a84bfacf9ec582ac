// Command k8s-openapi captures the OpenAPI documents a real kube-apiserver serves for its built-in
// API groups and writes them, zstd-compressed, as the artefacts the embedded API server
// (apiserver/openapi/) serves on /openapi/v2 and /openapi/v3.
//
// The documents come from a running kube-apiserver (the one `cargo xtask cluster up` starts, of the
// version tools/k8s pins), not from api/openapi-spec in the Kubernetes module: the committed spec
// advertises CBOR media types the server does not accept by default and lacks the `enum` lists the
// OpenAPIEnums feature adds, so only the served documents are what kubectl really reads.
//
// Groups served by CustomResourceDefinitions at capture time are left out: the embedded server
// builds those documents itself.
//
// Usage (from the repository root):
//
//	cargo xtask cluster up
//	(cd tools/k8s-openapi && go run . -kubeconfig ../../target/k8s-cluster/kubeconfig -out ../../apiserver/openapi)
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

type kubeconfig struct {
	Clusters []struct {
		Cluster struct {
			Server string `json:"server"`
			CAData string `json:"certificate-authority-data"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		User struct {
			Token string `json:"token"`
		} `json:"user"`
	} `json:"users"`
}

type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient(path string) (*client, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(raw, &kc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if len(kc.Clusters) == 0 || len(kc.Users) == 0 {
		return nil, fmt.Errorf("%s: needs a cluster and a user with a token", path)
	}
	c := &client{base: strings.TrimRight(kc.Clusters[0].Cluster.Server, "/"), token: kc.Users[0].User.Token}
	transport := &http.Transport{}
	if ca := kc.Clusters[0].Cluster.CAData; ca != "" {
		pem, err := base64.StdEncoding.DecodeString(ca)
		if err != nil {
			return nil, fmt.Errorf("certificate-authority-data: %w", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	c.http = &http.Client{Transport: transport}
	return c, nil
}

func (c *client) get(path, accept string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

// crdGroups lists the API groups served by CustomResourceDefinitions.
func (c *client) crdGroups() (map[string]bool, error) {
	body, err := c.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "application/json")
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Spec struct {
				Group string `json:"group"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, err
	}
	groups := map[string]bool{}
	for _, crd := range list.Items {
		groups[crd.Spec.Group] = true
	}
	return groups, nil
}

// groupOf returns the API group a document or path belongs to ("" for the core group and for
// paths outside /apis/).
func groupOf(path string) string {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(path, "/"), "apis/")
	if !ok {
		return ""
	}
	return strings.SplitN(rest, "/", 2)[0]
}

// reversedGroup is how kube-apiserver names CRD definitions: "stable.example.com" -> "com.example.stable".
func reversedGroup(group string) string {
	parts := strings.Split(group, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".")
}

// v3Bundle is every built-in /openapi/v3 document, each as `path\nlength\n` followed by the
// document's bytes exactly as served.
func v3Bundle(c *client, crds map[string]bool) ([]byte, []string, error) {
	body, err := c.get("/openapi/v3", "application/json")
	if err != nil {
		return nil, nil, err
	}
	var index struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &index); err != nil {
		return nil, nil, err
	}
	var paths []string
	for p := range index.Paths {
		if strings.HasPrefix(p, ".well-known") || strings.HasPrefix(p, "openid") || crds[groupOf(p)] {
			continue
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out bytes.Buffer
	for _, p := range paths {
		doc, err := c.get("/openapi/v3/"+p, "application/json")
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(&out, "%s\n%d\n", p, len(doc))
		out.Write(doc)
	}
	return out.Bytes(), paths, nil
}

// v2Documents returns /openapi/v2 without CRD paths and definitions, as minified JSON and as the
// gnostic protobuf kubectl asks for.
func v2Documents(c *client, crds map[string]bool) ([]byte, []byte, error) {
	body, err := c.get("/openapi/v2", "application/json")
	if err != nil {
		return nil, nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, err
	}
	if paths, ok := doc["paths"].(map[string]any); ok {
		for p := range paths {
			if crds[groupOf(p)] {
				delete(paths, p)
			}
		}
	}
	if defs, ok := doc["definitions"].(map[string]any); ok {
		for name := range defs {
			for g := range crds {
				if strings.HasPrefix(name, reversedGroup(g)+".") {
					delete(defs, name)
				}
			}
		}
	}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, nil, err
	}
	minified := bytes.TrimRight(js.Bytes(), "\n")
	parsed, err := openapi_v2.ParseDocument(minified)
	if err != nil {
		return nil, nil, fmt.Errorf("gnostic: %w", err)
	}
	pb, err := proto.Marshal(parsed)
	if err != nil {
		return nil, nil, err
	}
	return minified, pb, nil
}

func writeZstd(path string, data []byte) error {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithWindowSize(1<<23))
	if err != nil {
		return err
	}
	compressed := enc.EncodeAll(data, nil)
	if err := os.WriteFile(path, compressed, 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d bytes (%d uncompressed)\n", path, len(compressed), len(data))
	return nil
}

func run() error {
	kubeconfigPath := flag.String("kubeconfig", "", "kubeconfig of a running kube-apiserver (required)")
	out := flag.String("out", "", "directory to write the artefacts into (required)")
	flag.Parse()
	if *kubeconfigPath == "" || *out == "" {
		flag.Usage()
		return fmt.Errorf("-kubeconfig and -out are required")
	}
	c, err := newClient(*kubeconfigPath)
	if err != nil {
		return err
	}
	if _, err := url.Parse(c.base); err != nil {
		return err
	}
	version, err := c.get("/version", "application/json")
	if err != nil {
		return err
	}
	crds, err := c.crdGroups()
	if err != nil {
		return err
	}
	v3, paths, err := v3Bundle(c, crds)
	if err != nil {
		return err
	}
	v2json, v2pb, err := v2Documents(c, crds)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"v3.bundle.zst": v3, "v2.json.zst": v2json, "v2.pb.zst": v2pb} {
		if err := writeZstd(filepath.Join(*out, name), data); err != nil {
			return err
		}
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	_ = json.Unmarshal(version, &v)
	source := fmt.Sprintf("kube-apiserver %s\n/openapi/v3 documents: %s\n", v.GitVersion, strings.Join(paths, " "))
	return os.WriteFile(filepath.Join(*out, "SOURCE"), []byte(source), 0o644)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "k8s-openapi:", err)
		os.Exit(1)
	}
}
