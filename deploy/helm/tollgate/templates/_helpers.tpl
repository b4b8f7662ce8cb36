{{- define "tollgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tollgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tollgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tollgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tollgate.selector" -}}
app.kubernetes.io/name: {{ include "tollgate.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tollgate.secretName" -}}
{{- default (printf "%s-secrets" (include "tollgate.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "tollgate.image" -}}
{{- printf "%s%s:%s" .root.Values.image.registry .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}

{{/* An env entry from the release Secret; optional keys may be absent from an existingSecret. */}}
{{- define "tollgate.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "tollgate.secretName" .root }}
      key: {{ .key }}
      optional: {{ .optional }}
{{- end }}

{{- define "tollgate.controlPlaneUrl" -}}
{{- default (printf "http://%s-control-plane:%v" (include "tollgate.fullname" .) .Values.controlPlane.service.grpcPort) .Values.gateway.controlPlaneUrl }}
{{- end }}

{{/* "true" when the Secret holds `key`: a non-empty value of a chart-made Secret, or a key listed in secrets.existingSecretKeys (masterKey always). */}}
{{- define "tollgate.secretHasKey" -}}
{{- $s := .root.Values.secrets }}
{{- if $s.existingSecret }}
{{- if or (eq .key "masterKey") (has .key $s.existingSecretKeys) }}true{{ end }}
{{- else if index $s .key }}true{{ end }}
{{- end }}

{{/*
A secret setting. By default NAME from the Secret (optional keys may be absent). With
secrets.mountAsFiles, NAME_FILE naming the key in the mounted Secret volume, for the keys it holds.
*/}}
{{- define "tollgate.secretSetting" -}}
{{- if .root.Values.secrets.mountAsFiles -}}
{{- if include "tollgate.secretHasKey" . -}}
- { name: {{ .name }}_FILE, value: {{ printf "/run/secrets/tollgate/%s" .key | quote }} }
{{- end -}}
{{- else -}}
{{- include "tollgate.secretEnv" . -}}
{{- end -}}
{{- end }}

{{/* With secrets.mountAsFiles: the comma-joined keys of `keys` the Secret holds (a pod mounts only those it uses). */}}
{{- define "tollgate.secretFileKeys" -}}
{{- $present := list }}
{{- range .keys }}
{{- if include "tollgate.secretHasKey" (dict "root" $.root "key" .) }}{{ $present = append $present . }}{{ end }}
{{- end }}
{{- join "," $present }}
{{- end }}

{{/* The Secret volume of one pod: only `keys` (from tollgate.secretFileKeys), readable by the pod's group. */}}
{{- define "tollgate.secretVolume" -}}
- name: secrets
  secret:
    secretName: {{ include "tollgate.secretName" .root }}
    # 0440: the runtime user's group (fsGroup) reads, nobody writes.
    defaultMode: 288
    items:
      {{- range splitList "," .keys }}
      - { key: {{ . }}, path: {{ . }} }
      {{- end }}
{{- end }}
