{{/* Names, labels, images and the LABELLOOP_* environment shared by every template. */}}

{{/* The LabelLoop gRPC services, in port order. */}}
{{- define "labelloop.services" -}}
store trainer scorer selector controller
{{- end -}}

{{- define "labelloop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart>, or just the release name when it already contains the chart name. */}}
{{- define "labelloop.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's resource name: (dict "root" $ "component" "store") -> <fullname>-store. */}}
{{- define "labelloop.componentName" -}}
{{- printf "%s-%s" (include "labelloop.fullname" .root | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "labelloop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: (dict "root" $ "component" "store"). Never change them: selectors are immutable. */}}
{{- define "labelloop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "labelloop.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Common labels: (dict "root" $ "component" "store"). */}}
{{- define "labelloop.labels" -}}
helm.sh/chart: {{ include "labelloop.chart" .root }}
{{ include "labelloop.selectorLabels" . }}
app.kubernetes.io/part-of: labelloop
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* An image reference: (dict "root" $ "image" .Values.images.service). A tag may carry "@sha256:...". */}}
{{- define "labelloop.image" -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion | toString | trimSuffix "@" -}}
{{- if hasPrefix "@" $tag -}}
{{- printf "%s%s" .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The image of a component: the trainer image for the trainer, the slim one for the others. */}}
{{- define "labelloop.componentImage" -}}
{{- if eq .component "trainer" -}}
{{- include "labelloop.image" (dict "root" .root "image" .root.Values.images.trainer) -}}
{{- else -}}
{{- include "labelloop.image" (dict "root" .root "image" .root.Values.images.service) -}}
{{- end -}}
{{- end -}}

{{/* The trainer Jobs' image: trainer.job.image, falling back to images.trainer field by field. */}}
{{- define "labelloop.jobImage" -}}
{{- $job := .Values.trainer.job.image -}}
{{- $image := dict "repository" ($job.repository | default .Values.images.trainer.repository) "tag" ($job.tag | default .Values.images.trainer.tag) -}}
{{- include "labelloop.image" (dict "root" . "image" $image) -}}
{{- end -}}

{{- define "labelloop.serviceAccountName" -}}
{{- include "labelloop.componentName" . -}}
{{- end -}}

{{- define "labelloop.jobNamespace" -}}
{{- .Values.trainer.job.namespace | default .Release.Namespace -}}
{{- end -}}

{{/* Object store ------------------------------------------------------------------------------ */}}

{{- define "labelloop.objectStore.enabled" -}}
{{- if and (eq .Values.storage.backend "s3") .Values.objectStore.enabled (not .Values.s3.endpoint) -}}true{{- end -}}
{{- end -}}

{{/* Fails the render on contradictory storage settings, with the fix in the message. */}}
{{- define "labelloop.validate" -}}
{{- if eq .Values.storage.backend "s3" -}}
{{- if and .Values.s3.endpoint .Values.objectStore.enabled -}}
{{- fail "s3.endpoint is set and objectStore.enabled is true: pick one (set objectStore.enabled=false to use the external S3 server)" -}}
{{- end -}}
{{- if and (not .Values.s3.endpoint) (not .Values.objectStore.enabled) -}}
{{- fail "no object store: set s3.endpoint (and s3.existingSecret), or objectStore.enabled=true" -}}
{{- end -}}
{{- if and .Values.s3.endpoint (not .Values.s3.existingSecret) -}}
{{- fail "s3.endpoint needs s3.existingSecret: a Secret with the access key and secret key" -}}
{{- end -}}
{{- else if not .Values.storage.local.existingClaim -}}
{{- fail "storage.backend=local needs storage.local.existingClaim: a ReadWriteMany PersistentVolumeClaim" -}}
{{- end -}}
{{- range $svc := list "store" "trainer" "controller" -}}
{{- if ne (int (index $.Values $svc).replicaCount) 1 -}}
{{- fail (printf "%s.replicaCount must be 1: LabelLoop runs exactly one %s" $svc $svc) -}}
{{- end -}}
{{- end -}}
{{- $_ := include "labelloop.executor" . -}}{{- /* fails on an unknown trainer.executor */ -}}
{{- $webhook := int .Values.controller.webhookPort -}}
{{- if and $webhook (has $webhook (list (int .Values.controller.port) (int .Values.controller.metricsPort))) -}}
{{- fail (printf "controller.webhookPort=%d is already the controller's gRPC or metrics port: pick another (e.g. 9180)" $webhook) -}}
{{- end -}}
{{- end -}}

{{/* Trainer executors ---------------------------------------------------------------------------- */}}

{{/* What each trainer executor needs from the chart, under the names LABELLOOP_TRAINER_EXECUTOR takes
     (labelloop.trainer.executors.registry); values.schema.json lists the same names for
     trainer.executor, and tests/deploy/test_executors.py checks that all three agree.
       runsJobs:    the trainer starts Kubernetes Jobs (a Role, an API token, LABELLOOP_JOB_TEMPLATE)
       trainsInPod: training runs inside the trainer pod (the GPUs of trainer.gpu, /dev/shm)
     Templates ask these traits, never the executor's name. */}}
{{- define "labelloop.executors" -}}
kubernetes: {runsJobs: true, trainsInPod: false}
local: {runsJobs: false, trainsInPod: true}
{{- end -}}

{{/* The traits of trainer.executor, as YAML; fails naming the choices for an unknown executor. */}}
{{- define "labelloop.executor" -}}
{{- $executors := include "labelloop.executors" . | fromYaml -}}
{{- $name := .Values.trainer.executor | toString -}}
{{- if not (hasKey $executors $name) -}}
{{- fail (printf "trainer.executor=%s is not an executor: use one of %s" $name (keys $executors | sortAlpha | join ", ")) -}}
{{- end -}}
{{- index $executors $name | toYaml -}}
{{- end -}}

{{/* "true" when the trainer starts Kubernetes Jobs for its runs, else "". */}}
{{- define "labelloop.trainer.runsJobs" -}}
{{- if (include "labelloop.executor" . | fromYaml).runsJobs -}}true{{- end -}}
{{- end -}}

{{/* "true" when training runs inside the trainer pod, else "". */}}
{{- define "labelloop.trainer.trainsInPod" -}}
{{- if (include "labelloop.executor" . | fromYaml).trainsInPod -}}true{{- end -}}
{{- end -}}

{{- define "labelloop.objectStore.secretName" -}}
{{- include "labelloop.componentName" (dict "root" . "component" "objectstore") -}}
{{- end -}}

{{- define "labelloop.s3.endpoint" -}}
{{- if include "labelloop.objectStore.enabled" . -}}
{{- /* Namespace-qualified: trainer Jobs may run in another namespace. */ -}}
{{- printf "%s.%s.svc:%d" (include "labelloop.componentName" (dict "root" . "component" "objectstore")) .Release.Namespace (int .Values.objectStore.port) -}}
{{- else -}}
{{- .Values.s3.endpoint -}}
{{- end -}}
{{- end -}}

{{- define "labelloop.s3.secretName" -}}
{{- if include "labelloop.objectStore.enabled" . -}}
{{- include "labelloop.objectStore.secretName" . -}}
{{- else -}}
{{- .Values.s3.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* Environment --------------------------------------------------------------------------------- */}}

{{/* The LABELLOOP_* environment of a pod, as a YAML list: (dict "root" $ "component" "store").
     Component "trainer-job" is the trainer's Jobs: the same settings without ports. */}}
{{/* The services' TLS and token settings (core/config.py SecurityConfig), from the tls and auth
     Secrets mounted by labelloop.deployment; nothing when both are off (compose's settings). */}}
{{- define "labelloop.securityEnv" -}}
{{- $v := .Values -}}
{{- if $v.tls.secretName }}
- name: LABELLOOP_TLS_CERT
  value: /etc/labelloop/tls/tls.crt
- name: LABELLOOP_TLS_KEY
  value: /etc/labelloop/tls/tls.key
- name: LABELLOOP_TLS_CA
  value: /etc/labelloop/tls/ca.crt
- name: LABELLOOP_TLS_CLIENT_AUTH
  value: {{ $v.tls.clientAuth | quote }}
- name: LABELLOOP_HEALTH_PORT
  value: {{ $v.tls.healthPort | quote }}
{{- end }}
{{- if $v.auth.secretName }}
- name: LABELLOOP_AUTH_TOKENS_FILE
  value: /etc/labelloop/auth/tokens.yaml
- name: LABELLOOP_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $v.auth.secretName }}
      key: service-token
{{- end }}
{{- if not $v.auth.reflection }}
- name: LABELLOOP_REFLECTION
  value: "false"
{{- end }}
{{- if ne $v.auth.metricsAccess "open" }}
- name: LABELLOOP_METRICS_ACCESS
  value: {{ $v.auth.metricsAccess | quote }}
{{- end }}
{{- end -}}

{{- define "labelloop.env" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $component := .component -}}
- name: LABELLOOP_STORAGE_BACKEND
  value: {{ $v.storage.backend | quote }}
{{- if eq $v.storage.backend "local" }}
- name: LABELLOOP_STORAGE_ROOT
  value: {{ $v.storage.local.root | quote }}
{{- else }}
- name: LABELLOOP_S3_ENDPOINT
  value: {{ include "labelloop.s3.endpoint" $root | quote }}
- name: LABELLOOP_S3_BUCKET
  value: {{ $v.s3.bucket | quote }}
- name: LABELLOOP_S3_SECURE
  value: {{ ternary "true" "false" (and (not (include "labelloop.objectStore.enabled" $root)) $v.s3.secure) | quote }}
- name: LABELLOOP_S3_REGION
  value: {{ $v.s3.region | quote }}
- name: LABELLOOP_S3_PUBLIC_ENDPOINT
  value: {{ $v.s3.publicEndpoint | quote }}
- name: LABELLOOP_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "labelloop.s3.secretName" $root }}
      key: {{ ternary "accessKey" $v.s3.accessKeyKey (not (empty (include "labelloop.objectStore.enabled" $root))) }}
- name: LABELLOOP_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "labelloop.s3.secretName" $root }}
      key: {{ ternary "secretKey" $v.s3.secretKeyKey (not (empty (include "labelloop.objectStore.enabled" $root))) }}
{{- end }}
{{- range $svc := splitList " " (include "labelloop.services" $root) }}
- name: LABELLOOP_{{ upper $svc }}_ADDRESS
  value: {{ printf "%s:%d" (include "labelloop.componentName" (dict "root" $root "component" $svc)) (int (index $v $svc).port) | quote }}
{{- end }}
- name: LABELLOOP_BIND_HOST
  value: {{ $v.config.bindHost | quote }}
- name: LABELLOOP_LOG_LEVEL
  value: {{ $v.config.logLevel | quote }}
- name: LABELLOOP_LOG_FORMAT
  value: {{ $v.config.logFormat | quote }}
- name: LABELLOOP_CACHE_DIR
  value: {{ $v.config.cacheDir | quote }}
- name: HF_HUB_OFFLINE
  value: {{ ternary "1" "0" $v.config.offline | quote }}
{{- if has $component (splitList " " (include "labelloop.services" $root)) }}
{{- $values := index $v $component }}
- name: LABELLOOP_GRPC_PORT
  value: {{ $values.port | quote }}
- name: LABELLOOP_METRICS_PORT
  value: {{ $values.metricsPort | quote }}
{{- include "labelloop.securityEnv" $root }}
{{- end }}
{{- if eq $component "store" }}
# The only folders of the pod the store reads manifests and images from; empty: the object store only.
- name: LABELLOOP_IMPORT_ROOTS
  value: {{ join ":" $v.store.importRoots | quote }}
{{- end }}
{{- if eq $component "controller" }}
- name: LABELLOOP_WEBHOOK_PORT
  value: {{ $v.controller.webhookPort | quote }}
{{- with $v.controller.labelStudio }}
{{- if .apiKeySecret.name }}
# The token never appears in the chart's values or the pod spec: only a reference to the Secret.
- name: {{ .apiKeyEnv }}
  valueFrom:
    secretKeyRef:
      name: {{ .apiKeySecret.name }}
      key: {{ .apiKeySecret.key }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq $component "trainer" }}
- name: LABELLOOP_TRAINER_EXECUTOR
  value: {{ $v.trainer.executor | quote }}
{{- if include "labelloop.trainer.runsJobs" $root }}
- name: LABELLOOP_JOB_TEMPLATE
  value: {{ include "labelloop.jobTemplate" $root | quote }}
{{- end }}
{{- end }}
{{- with $v.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- $extra := ternary $v.trainer.job.extraEnv (index $v $component | default dict).extraEnv (eq $component "trainer-job") }}
{{- with $extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* LABELLOOP_JOB_TEMPLATE: everything the trainer's KubernetesExecutor puts into a Job's pod. */}}
{{- define "labelloop.jobTemplate" -}}
{{- $v := .Values -}}
{{- $job := $v.trainer.job -}}
{{- $labels := include "labelloop.selectorLabels" (dict "root" . "component" "trainer-job") | fromYaml -}}
{{- $_ := set $labels "app.kubernetes.io/version" .Chart.AppVersion -}}
{{- $volumes := list -}}
{{- $mounts := list -}}
{{- if eq $v.storage.backend "local" -}}
{{- $volumes = append $volumes (dict "name" "data" "persistentVolumeClaim" (dict "claimName" $v.storage.local.existingClaim)) -}}
{{- $mounts = append $mounts (dict "name" "data" "mountPath" $v.storage.local.root) -}}
{{- end -}}
{{- $pullSecrets := list -}}
{{- range $v.images.pullSecrets -}}
{{- $pullSecrets = append $pullSecrets . -}}
{{- end -}}
{{- $template := dict
  "image" (include "labelloop.jobImage" .)
  "imagePullPolicy" $v.images.pullPolicy
  "imagePullSecrets" $pullSecrets
  "namespace" (include "labelloop.jobNamespace" .)
  "namePrefix" (include "labelloop.fullname" . | trunc 24 | trimSuffix "-")
  "serviceAccountName" (include "labelloop.componentName" (dict "root" . "component" "trainer-job"))
  "gpus" (int $v.trainer.gpu.count)
  "gpuResource" $v.trainer.gpu.resourceName
  "resources" $job.resources
  "nodeSelector" $job.nodeSelector
  "tolerations" $job.tolerations
  "affinity" $job.affinity
  "priorityClassName" $job.priorityClassName
  "backoffLimit" (int $job.backoffLimit)
  "activeDeadlineSeconds" (int $job.activeDeadlineSeconds)
  "ttlSecondsAfterFinished" (int $job.ttlSecondsAfterFinished)
  "labels" $labels
  "annotations" $job.podAnnotations
  "env" (include "labelloop.env" (dict "root" . "component" "trainer-job") | fromYamlArray)
  "podSecurityContext" $v.podSecurityContext
  "securityContext" $v.securityContext
  "cacheDir" $v.config.cacheDir
  "shmSize" $job.shmSize
  "volumes" $volumes
  "volumeMounts" $mounts
  "stuckSeconds" (int $job.stuckSeconds)
-}}
{{- toJson $template -}}
{{- end -}}
