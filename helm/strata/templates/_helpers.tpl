{{/* Names are kept short: a StatefulSet's pods and revisions add up to 11 characters. */}}
{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" }}
{{- end }}

{{- define "strata.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "strata.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels; call with (dict "ctx" $ "component" "master"). */}}
{{- define "strata.labels" -}}
helm.sh/chart: {{ include "strata.chart" .ctx }}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: strata
{{- end }}

{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "strata.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "strata.secretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "strata.fullname" .)) }}
{{- end }}

{{- define "strata.master" -}}{{ include "strata.fullname" . }}-master{{- end }}
{{- define "strata.worker" -}}{{ include "strata.fullname" . }}-worker{{- end }}
{{- define "strata.gateway" -}}{{ include "strata.fullname" . }}-gateway{{- end }}
{{- define "strata.etcd" -}}{{ include "strata.fullname" . }}-etcd{{- end }}

{{/* The DNS suffix of the pods behind a headless Service: call with (list $ "service-name"). */}}
{{- define "strata.podDomain" -}}
{{- $ := index . 0 -}}
{{ index . 1 }}.{{ $.Release.Namespace }}.svc.{{ $.Values.clusterDomain }}
{{- end }}

{{/* Whether an etcd is needed (the etcd store, or the election of several masters), and whether the chart runs it. */}}
{{- define "strata.needsEtcd" -}}
{{- if or (eq .Values.metadata.backend "etcd") (gt (int .Values.masters.replicas) 1) }}true{{ end }}
{{- end }}
{{- define "strata.rendersEtcd" -}}
{{- if and (include "strata.needsEtcd" .) (empty .Values.metadata.etcd.endpoints) }}true{{ end }}
{{- end }}

{{/* host:port,host:port of the etcd members. */}}
{{- define "strata.etcdHosts" -}}
{{- if .Values.metadata.etcd.endpoints }}
{{- join "," .Values.metadata.etcd.endpoints }}
{{- else }}
{{- $hosts := list }}
{{- $domain := include "strata.podDomain" (list $ (include "strata.etcd" .)) }}
{{- range $i := until (int .Values.etcd.replicas) }}
{{- $hosts = append $hosts (printf "%s-%d.%s:%d" (include "strata.etcd" $) $i $domain (int $.Values.etcd.clientPort)) }}
{{- end }}
{{- join "," $hosts }}
{{- end }}
{{- end }}

{{/* The masters' stable addresses, as a TOML list. */}}
{{- define "strata.masterAddrs" -}}
{{- $addrs := list }}
{{- $domain := include "strata.podDomain" (list $ (include "strata.master" .)) }}
{{- range $i := until (int .Values.masters.replicas) }}
{{- $addrs = append $addrs (printf "http://%s-%d.%s:%d" (include "strata.master" $) $i $domain (int $.Values.masters.port) | quote) }}
{{- end }}
{{- printf "[%s]" (join ", " $addrs) }}
{{- end }}

{{- define "strata.rootUfsUri" -}}
{{- .Values.rootUfs.uri | default (printf "file://%s" .Values.rootUfs.mountPath) }}
{{- end }}

{{/* Checks that fail the install with a clear message (what values.schema.json cannot say). */}}
{{- define "strata.validate" -}}
{{- if and (gt (int .Values.masters.replicas) 1) (eq .Values.metadata.backend "embedded") }}
{{- fail "masters.replicas > 1 needs a shared metadata store: set metadata.backend to etcd (or fdb); the embedded store belongs to one master" }}
{{- end }}
{{- if and (eq .Values.metadata.backend "fdb") (not .Values.metadata.fdb.clusterFileSecret) }}
{{- fail "metadata.backend fdb needs metadata.fdb.clusterFileSecret: a Secret holding the FoundationDB cluster file" }}
{{- end }}
{{- if and (include "strata.needsEtcd" .) (lt (int .Values.config.leaseTtlMs) 2000) }}
{{- fail "config.leaseTtlMs must be at least 2000 with etcd (etcd's shortest lease)" }}
{{- end }}
{{- range $i, $t := .Values.workers.tiers }}
{{- if and (gt $i 0) (eq (upper $t.medium) "MEM") }}
{{- fail (printf "workers.tiers[%d]: only the first (highest) tier can be MEM" $i) }}
{{- end }}
{{- if and (ne (upper $t.medium) "MEM") (not $t.volume) }}
{{- fail (printf "workers.tiers[%d] (%s) needs a volume (type pvc, hostPath or emptyDir)" $i $t.medium) }}
{{- end }}
{{- if and $t.volume (eq $t.volume.type "pvc") (eq $.Values.workers.kind "DaemonSet") }}
{{- fail (printf "workers.tiers[%d]: a DaemonSet has no PVC per pod; use volume.type hostPath (or emptyDir)" $i) }}
{{- end }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.host) (not .Values.config.domain) }}
{{- fail "ingress.enabled needs ingress.host or config.domain" }}
{{- end }}
{{- range .Values.mounts }}
{{- $all := list .bucket .uri (toString (.syncInterval | default "1m")) (.writeType | default "CACHE_THROUGH") }}
{{- range $k, $v := (.options | default dict) }}{{ $all = append $all (printf "%s=%v" $k $v) }}{{ end }}
{{- range $a := $all }}
{{- if contains "'" $a }}{{ fail (printf "mounts: %q: a quote cannot be passed to the mount Job" $a) }}{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{/* A Strata size (512MiB, 4GiB, bytes) as a Kubernetes quantity (512Mi, 4Gi). */}}
{{- define "strata.quantity" -}}
{{- $s := include "strata.size" . | replace " " "" | lower }}
{{- $n := regexFind "^[0-9]+" $s }}
{{- $units := dict "" "" "b" "" "k" "Ki" "kb" "Ki" "kib" "Ki" "m" "Mi" "mb" "Mi" "mib" "Mi" "g" "Gi" "gb" "Gi" "gib" "Gi" "t" "Ti" "tb" "Ti" "tib" "Ti" }}
{{- $n }}{{ get $units (trimPrefix $n $s) }}
{{- end }}

{{/* A size value as text (YAML numbers arrive as floats). */}}
{{- define "strata.size" -}}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- end }}

{{/* A size as TOML: a number stays a number, text is quoted. */}}
{{- define "strata.tomlSize" -}}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) }}{{ int64 . }}{{ else }}{{ . | quote }}{{ end }}
{{- end }}

{{/* Environment every Strata container gets. */}}
{{- define "strata.env" -}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: POD_IP
  valueFrom: {fieldRef: {fieldPath: status.podIP}}
- name: RUST_LOG
  value: {{ .Values.logLevel | quote }}
- name: STRATA_CONFIG
  value: /etc/strata/strata.toml
- name: STRATA_CLUSTER_SECRET
  valueFrom:
    secretKeyRef: {name: {{ include "strata.secretName" . }}, key: {{ .Values.auth.clusterSecretKey }}}
{{- end }}

{{- define "strata.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: http}
  {{- toYaml .Values.probes.startup | nindent 2 }}
livenessProbe:
  httpGet: {path: /healthz, port: http}
  {{- toYaml .Values.probes.liveness | nindent 2 }}
readinessProbe:
  httpGet: {path: /readyz, port: http}
  {{- toYaml .Values.probes.readiness | nindent 2 }}
{{- end }}

{{- define "strata.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- end }}

{{/* The volumes every Strata pod mounts: config, /tmp, the root under store. */}}
{{- define "strata.commonVolumes" -}}
- name: config
  configMap: {name: {{ include "strata.fullname" . }}-config}
- name: tmp
  emptyDir: {}
{{- if .Values.rootUfs.persistence.enabled }}
- name: root-ufs
  persistentVolumeClaim:
    claimName: {{ .Values.rootUfs.persistence.existingClaim | default (printf "%s-root-ufs" (include "strata.fullname" .)) }}
{{- end }}
{{- end }}

{{- define "strata.commonMounts" -}}
- {name: config, mountPath: /etc/strata, readOnly: true}
- {name: tmp, mountPath: /tmp}
{{- if .Values.rootUfs.persistence.enabled }}
- {name: root-ufs, mountPath: {{ .Values.rootUfs.mountPath }}}
{{- end }}
{{- end }}

{{- define "strata.checksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}
