package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	apitypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

// goObjects are objects whose protobuf form uses every type with a JSON form of its own: Time,
// MicroTime, Duration, IntOrString, Quantity, RawExtension, FieldsV1, bytes, inline embeds, renamed
// fields and apiextensions' JSONSchemaProps unions.
func goObjects() map[string]runtime.Object {
	ts := metav1.NewTime(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC))
	mt := metav1.NewMicroTime(time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC))
	tm := func(av, k string) metav1.TypeMeta { return metav1.TypeMeta{APIVersion: av, Kind: k} }
	return map[string]runtime.Object{
		"go-deployment.pb": &appsv1.Deployment{
			TypeMeta: tm("apps/v1", "Deployment"),
			ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "default", CreationTimestamp: ts, Labels: map[string]string{"app": "d"},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m", Operation: "Apply", APIVersion: "apps/v1", Time: &ts,
					FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:replicas":{}}}`)}}}},
			Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(0)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "d"}},
				Strategy: appsv1.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxSurge: ptr(intstr.FromString("25%")), MaxUnavailable: ptr(intstr.FromInt32(0))}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "d"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx",
						Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": resource.MustParse("500m"), "memory": resource.MustParse("1Gi")}},
						Ports:     []corev1.ContainerPort{{ContainerPort: 80}}}}}}},
		},
		"go-lease.pb": &coordinationv1.Lease{TypeMeta: tm("coordination.k8s.io/v1", "Lease"),
			ObjectMeta: metav1.ObjectMeta{Name: "l", Namespace: "default"},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr("holder"), LeaseDurationSeconds: ptr(int32(15)), RenewTime: &mt}},
		"go-controllerrevision.pb": &appsv1.ControllerRevision{TypeMeta: tm("apps/v1", "ControllerRevision"),
			ObjectMeta: metav1.ObjectMeta{Name: "cr"}, Revision: 3, Data: runtime.RawExtension{Raw: []byte(`{"spec":{"x":1}}`)}},
		"go-secret.pb": &corev1.Secret{TypeMeta: tm("v1", "Secret"), ObjectMeta: metav1.ObjectMeta{Name: "s"},
			Data: map[string][]byte{"k": []byte("v\x00\xff")}, Type: "Opaque"},
		"go-pod.pb": &corev1.Pod{TypeMeta: tm("v1", "Pod"), ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "u1", Controller: ptr(true)}}},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "c", Image: "nginx",
					Env: []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "k"}}}},
					EnvFrom:        []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}, PeriodSeconds: 5},
					Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: "TCP"}},
					VolumeMounts:   []corev1.VolumeMount{{Name: "v", MountPath: "/data"}}}},
				Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, DefaultMode: ptr(int32(0o644))}}},
					{Name: "e", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr(resource.MustParse("1Gi"))}}}},
				TerminationGracePeriodSeconds: ptr(int64(0)),
			},
			Status: corev1.PodStatus{Phase: "Running", StartTime: &ts}},
		"go-event.pb": &eventsv1.Event{TypeMeta: tm("events.k8s.io/v1", "Event"), ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "default"},
			EventTime: mt, ReportingController: "kubewasm.dev/x", ReportingInstance: "x-1", Action: "Reconcile", Reason: "Done", Type: "Normal",
			Regarding: corev1.ObjectReference{Kind: "Pod", Name: "p", Namespace: "default"}},
		"go-hpa.pb": &autoscalingv2.HorizontalPodAutoscaler{TypeMeta: tm("autoscaling/v2", "HorizontalPodAutoscaler"),
			ObjectMeta: metav1.ObjectMeta{Name: "h"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 3, ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "d"},
				Metrics: []autoscalingv2.MetricSpec{{Type: "Resource", Resource: &autoscalingv2.ResourceMetricSource{Name: "cpu",
					Target: autoscalingv2.MetricTarget{Type: "AverageValue", AverageValue: ptr(resource.MustParse("250m"))}}}}}},
		"go-deleteoptions.pb": &metav1.DeleteOptions{TypeMeta: tm("v1", "DeleteOptions"), GracePeriodSeconds: ptr(int64(0)),
			Preconditions: &metav1.Preconditions{UID: ptr(types("u1"))}, PropagationPolicy: ptr(metav1.DeletePropagationForeground), DryRun: []string{"All"}},
		"go-crd.pb": &apiextensionsv1.CustomResourceDefinition{TypeMeta: tm("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
			ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Scope: "Namespaced",
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Kind: "Widget"},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object",
						Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"spec": {Type: "object", XPreserveUnknownFields: ptr(true),
								AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: false},
								Required:             []string{"size"},
								Properties: map[string]apiextensionsv1.JSONSchemaProps{
									"size":  {Type: "integer", Minimum: ptr(1.0), Maximum: ptr(2.5), Default: &apiextensionsv1.JSON{Raw: []byte("3")}},
									"tags":  {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}},
									"label": {Ref: ptr("#/x"), Schema: "http://json-schema.org/draft-04/schema#", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"a"`)}}},
								}},
						}}},
					AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{{Name: "Size", Type: "integer", JSONPath: ".spec.size"}}}}}},
	}
}

func types(s string) apitypes.UID { return apitypes.UID(s) }

func fixtures(dir string) error {
	s, err := newScheme()
	if err != nil {
		return err
	}
	ser := protobuf.NewSerializer(s, s)
	for name, obj := range goObjects() {
		var b bytes.Buffer
		if err := ser.Encode(obj, &b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var bodies []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pb") || strings.HasSuffix(e.Name(), ".bin") {
			bodies = append(bodies, e.Name())
		}
	}
	sort.Strings(bodies)
	for _, name := range bodies {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		obj, _, err := ser.Decode(b, nil, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		j, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		var v any
		if err := json.Unmarshal(j, &v); err != nil {
			return err
		}
		j, err = json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		golden := strings.TrimSuffix(strings.TrimSuffix(name, ".pb"), ".bin") + ".json"
		if err := os.WriteFile(filepath.Join(dir, golden), append(j, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
