{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "ferry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, unless the release name already contains the chart name. */}}
{{- define "ferry.fullname" -}}
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

{{/* Name of one component's objects: fullname-component, within 63 characters. */}}
{{- define "ferry.componentName" -}}
{{- printf "%s-%s" (include "ferry.fullname" .root | trunc (int (sub 62 (len .component))) | trimSuffix "-") .component }}
{{- end }}

{{- define "ferry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "ferry.labels" -}}
helm.sh/chart: {{ include "ferry.chart" . }}
{{ include "ferry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ferry
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component (worker or runner); call with (dict "root" $ "component" "worker"). */}}
{{- define "ferry.componentLabels" -}}
{{ include "ferry.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ferry.componentSelectorLabels" -}}
{{ include "ferry.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ferry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ferry.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ferry.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The Secret with the connections map: the existing one, or the one the chart creates. */}}
{{- define "ferry.connectionsSecret" -}}
{{- if .Values.connections.existingSecret }}
{{- .Values.connections.existingSecret }}
{{- else if .Values.connections.urls }}
{{- include "ferry.componentName" (dict "root" . "component" "connections") }}
{{- end }}
{{- end }}

{{- define "ferry.uiTokenSecret" -}}
{{- if .Values.runner.ui.existingSecret }}
{{- .Values.runner.ui.existingSecret }}
{{- else }}
{{- include "ferry.componentName" (dict "root" . "component" "ui-token") }}
{{- end }}
{{- end }}

{{/* Flags every ferry process gets: where Temporal is, and how to log. */}}
{{- define "ferry.temporalArgs" -}}
- --temporal
- {{ required "temporal.address is required (HOST:PORT of the Temporal frontend)" .Values.temporal.address | quote }}
- --namespace
- {{ .Values.temporal.namespace | quote }}
- --task-queue
- {{ .Values.temporal.taskQueue | quote }}
- --log-format
- {{ .Values.logFormat | quote }}
- --log-level
- {{ .Values.logLevel | quote }}
{{- end }}

{{/* Environment every ferry process gets: OpenTelemetry. */}}
{{- define "ferry.otelEnv" -}}
- name: OTEL_SERVICE_NAME
  value: {{ printf "ferry-%s" .component | quote }}
{{- with .root.Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .root.Values.otel.headers }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  value: {{ . | quote }}
{{- end }}
{{- $attrs := list (printf "service.namespace=%s" .root.Release.Namespace) (printf "service.instance.id=$(POD_NAME)") }}
{{- with .root.Values.otel.resourceAttributes }}
{{- $attrs = append $attrs . }}
{{- end }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- end }}
