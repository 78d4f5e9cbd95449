{{/* The objects every LabelLoop service has: Deployment, Service, ServiceAccount, NetworkPolicy.
     Each takes (dict "root" $ "component" "<service>"); the per-component files under templates/<service>/
     include them, so the five services cannot drift apart in probes or security settings. */}}

{{/* Which components call a service's gRPC port ("test" is the helm test pod). The scorer and
     the selector read datasets from the object store, not through the store's API. */}}
{{- define "labelloop.callers" -}}
{{- $callers := dict
  "store" (list "controller" "trainer" "test")
  "trainer" (list "controller" "test")
  "scorer" (list "controller" "test")
  "selector" (list "controller" "test")
-}}
{{- index $callers . | toJson -}}
{{- end -}}

{{- define "labelloop.deployment" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $component := .component -}}
{{- $values := index $v $component -}}
{{- $isTrainer := eq $component "trainer" -}}
{{- $localTraining := and $isTrainer (eq (include "labelloop.trainer.trainsInPod" $root) "true") -}}
{{/* kubelet's gRPC probes cannot speak TLS: under TLS they use the plaintext health-only port. */}}
{{- $probePort := ternary $v.tls.healthPort $values.port (not (empty $v.tls.secretName)) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "labelloop.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "labelloop.labels" . | nindent 4 }}
spec:
  replicas: {{ $values.replicaCount }}
  revisionHistoryLimit: 3
  {{- if has $component (list "store" "trainer" "controller") }}
  # One instance at a time: a rolling update would briefly run two writers.
  strategy:
    type: Recreate
  {{- end }}
  selector:
    matchLabels:
      {{- include "labelloop.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "labelloop.labels" . | nindent 8 }}
        {{- with $values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "labelloop.serviceAccountName" . }}
      # Only the trainer talks to the Kubernetes API (to run Jobs).
      automountServiceAccountToken: {{ and $isTrainer (eq (include "labelloop.trainer.runsJobs" $root) "true") }}
      enableServiceLinks: false
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      {{- with $v.images.pullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      {{- with $values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      # SIGTERM stops taking RPCs and lets running ones finish (core/server.py).
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ $component }}
          image: {{ include "labelloop.componentImage" . | quote }}
          imagePullPolicy: {{ $v.images.pullPolicy }}
          command: ["python", "-m", "labelloop.{{ $component }}"]
          ports:
            - name: grpc
              containerPort: {{ $values.port }}
              protocol: TCP
            - name: metrics
              containerPort: {{ $values.metricsPort }}
              protocol: TCP
            {{- if $v.tls.secretName }}
            - name: health
              containerPort: {{ $v.tls.healthPort }}
              protocol: TCP
            {{- end }}
            {{- if and (eq $component "controller") (gt (int $values.webhookPort) 0) }}
            - name: webhook
              containerPort: {{ $values.webhookPort }}
              protocol: TCP
            {{- end }}
          env:
            {{- include "labelloop.env" . | nindent 12 }}
          startupProbe:
            grpc:
              port: {{ $probePort }}
            periodSeconds: {{ $v.probes.startup.periodSeconds }}
            failureThreshold: {{ $v.probes.startup.failureThreshold }}
          livenessProbe:
            grpc:
              port: {{ $probePort }}
            periodSeconds: {{ $v.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ $v.probes.liveness.failureThreshold }}
          readinessProbe:
            grpc:
              port: {{ $probePort }}
            periodSeconds: {{ $v.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ $v.probes.readiness.failureThreshold }}
          {{- $resources := deepCopy ($values.resources | default dict) }}
          {{- if and $localTraining (gt (int $v.trainer.gpu.count) 0) }}
          {{- $limits := $resources.limits | default dict }}
          {{- $_ := set $limits $v.trainer.gpu.resourceName (int $v.trainer.gpu.count) }}
          {{- $_ := set $resources "limits" $limits }}
          {{- end }}
          {{- with $resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- toYaml $v.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: cache
              mountPath: {{ $v.config.cacheDir }}
            {{- if $localTraining }}
            - name: dshm
              mountPath: /dev/shm
            {{- end }}
            {{- if eq $v.storage.backend "local" }}
            - name: data
              mountPath: {{ $v.storage.local.root }}
            {{- end }}
            {{- if $v.tls.secretName }}
            - name: tls
              mountPath: /etc/labelloop/tls
              readOnly: true
            {{- end }}
            {{- if $v.auth.secretName }}
            - name: auth
              mountPath: /etc/labelloop/auth
              readOnly: true
            {{- end }}
      volumes:
        # The root filesystem is read-only: scratch space and the cache are emptyDirs.
        - name: tmp
          emptyDir: {}
        - name: cache
          emptyDir:
            sizeLimit: {{ $v.config.cacheSizeLimit }}
        {{- if $localTraining }}
        - name: dshm
          emptyDir:
            medium: Memory
            sizeLimit: {{ $v.trainer.shmSize }}
        {{- end }}
        {{- if eq $v.storage.backend "local" }}
        - name: data
          persistentVolumeClaim:
            claimName: {{ $v.storage.local.existingClaim }}
        {{- end }}
        {{- if $v.tls.secretName }}
        # Mounted whole (no subPath), so a renewed Secret reaches the files and the running service.
        - name: tls
          secret:
            secretName: {{ $v.tls.secretName }}
            defaultMode: 0440
        {{- end }}
        {{- if $v.auth.secretName }}
        - name: auth
          secret:
            secretName: {{ $v.auth.secretName }}
            defaultMode: 0440
            items:
              - key: tokens.yaml
                path: tokens.yaml
        {{- end }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{- define "labelloop.service" -}}
{{- $values := index .root.Values .component -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "labelloop.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "labelloop.labels" . | nindent 4 }}
  {{- with $values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $values.service.type }}
  selector:
    {{- include "labelloop.selectorLabels" . | nindent 4 }}
  ports:
    - name: grpc
      port: {{ $values.port }}
      targetPort: grpc
      protocol: TCP
      # Cleartext HTTP/2: lets meshes and Gateways treat the port as gRPC.
      appProtocol: kubernetes.io/h2c
    - name: metrics
      port: {{ $values.metricsPort }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
    {{- if and (eq .component "controller") (gt (int $values.webhookPort) 0) }}
    # Label Studio posts its webhooks here (label_studio.webhook_url: http://<this service>:<port>/).
    - name: webhook
      port: {{ $values.webhookPort }}
      targetPort: webhook
      protocol: TCP
      appProtocol: http
    {{- end }}
{{- end -}}

{{- define "labelloop.serviceAccount" -}}
{{- $values := index .root.Values .component -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "labelloop.serviceAccountName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "labelloop.labels" . | nindent 4 }}
  {{- with $values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end -}}

{{/* Ingress to a service: gRPC from its callers (any peer for the controller, or controllerFrom),
     /metrics from metricsFrom, the controller's webhook port from webhookFrom only (no peers: closed).
     Egress stays open (the S3 server and Label Studio may be anywhere). */}}
{{- define "labelloop.networkPolicy" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $values := index $v .component -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "labelloop.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "labelloop.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "labelloop.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
  ingress:
    - ports:
        - port: grpc
          protocol: TCP
      {{- if eq .component "controller" }}
      # Deny by default: the peers of controllerFrom (people's tools), and `helm test`.
      from:
        {{- with $v.networkPolicy.controllerFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ include "labelloop.name" $root }}
              app.kubernetes.io/instance: {{ $root.Release.Name }}
              app.kubernetes.io/component: test
        {{- with $v.networkPolicy.extraFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- else }}
      from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ include "labelloop.name" $root }}
              app.kubernetes.io/instance: {{ $root.Release.Name }}
            matchExpressions:
              - key: app.kubernetes.io/component
                operator: In
                values:
                  {{- include "labelloop.callers" .component | fromJsonArray | toYaml | nindent 18 }}
        {{- if eq .component "store" }}
        {{- with $v.networkPolicy.storeFrom }}
        # Admins' and experimenters' tools (datasets).
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- end }}
        {{- with $v.networkPolicy.extraFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
    {{- if $v.tls.secretName }}
    # The plaintext health-only port: kubelet's probes (from the node) and `helm test`.
    - ports:
        - port: health
          protocol: TCP
      from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ include "labelloop.name" $root }}
              app.kubernetes.io/instance: {{ $root.Release.Name }}
              app.kubernetes.io/component: test
    {{- end }}
    - ports:
        - port: metrics
          protocol: TCP
      {{- with $v.networkPolicy.metricsFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- if and (eq .component "controller") (gt (int $values.webhookPort) 0) }}
    {{- with $v.networkPolicy.webhookFrom }}
    # Label Studio's webhooks: only from these peers (an unauthenticated endpoint; it only wakes a
    # reconciliation, which reads Label Studio's API, but it is no one else's to call).
    - ports:
        - port: webhook
          protocol: TCP
      from:
        {{- toYaml . | nindent 8 }}
    {{- end }}
    {{- end }}
{{- end -}}

{{/* A PodDisruptionBudget for a stateless service that runs more than one replica. */}}
{{- define "labelloop.pdb" -}}
{{- $values := index .root.Values .component -}}
{{- if and $values.pdb.enabled (gt (int $values.replicaCount) 1) -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "labelloop.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "labelloop.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ $values.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "labelloop.selectorLabels" . | nindent 6 }}
{{- end -}}
{{- end -}}
