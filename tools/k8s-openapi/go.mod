module kubewasm.dev/tools/k8s-openapi

go 1.26.0

require (
	github.com/google/gnostic-models v0.7.0
	github.com/klauspost/compress v1.18.0
	google.golang.org/protobuf v1.36.11
	sigs.k8s.io/yaml v1.6.0
)

require (
	go.yaml.in/yaml/v2 v2.4.2 // indirect
	go.yaml.in/yaml/v3 v3.0.3 // indirect
)
