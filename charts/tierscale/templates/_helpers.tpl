{{/* Names and labels shared by every template. */}}
{{- define "tierscale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tierscale.fullname" -}}
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

{{- define "tierscale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tierscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "tierscale.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "tierscale.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tierscale
{{- end -}}

{{- define "tierscale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tierscale.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator's namespace: settings.operatorNamespace, else the release's. */}}
{{- define "tierscale.operatorNamespace" -}}
{{- default .Release.Namespace .Values.settings.operatorNamespace -}}
{{- end -}}

{{/* Namespace and name of the Envoy routing ConfigMap (`ns/name` or `name`). */}}
{{- define "tierscale.envoyConfigMapNamespace" -}}
{{- $parts := splitList "/" .Values.settings.envoyConfigmap -}}
{{- if eq (len $parts) 2 -}}{{ index $parts 0 }}{{- else -}}{{ include "tierscale.operatorNamespace" . }}{{- end -}}
{{- end -}}
{{- define "tierscale.envoyConfigMapName" -}}
{{- last (splitList "/" .Values.settings.envoyConfigmap) -}}
{{- end -}}

{{/* A setting as its environment variable's text: lists comma-joined, integral numbers
without a fraction or exponent, booleans lower case. */}}
{{- define "tierscale.settingText" -}}
{{- if kindIs "slice" . -}}
{{- join "," . -}}
{{- else if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/* The recording rules document for settings.metricsWindowS, with the chart's interval. */}}
{{- define "tierscale.recordingRules" -}}
{{- $windows := .Files.Get "files/recording-rules/windows.yaml" | fromYaml -}}
{{- $key := printf "%v" .Values.settings.metricsWindowS -}}
{{- if not (hasKey $windows $key) -}}
{{- fail (printf "prometheusRules: recording rules are shipped for settings.metricsWindowS in %v (got %v); use one of them or set prometheusRules.enabled=false" (keys $windows | sortAlpha) .Values.settings.metricsWindowS) -}}
{{- end -}}
{{- $doc := .Files.Get (printf "files/recording-rules/%s" (get $windows $key)) | fromYaml -}}
{{- $groups := list -}}
{{- range $doc.groups -}}
{{- $group := . -}}
{{- if $.Values.prometheusRules.interval -}}
{{- $group = set $group "interval" $.Values.prometheusRules.interval -}}
{{- end -}}
{{- $groups = append $groups $group -}}
{{- end -}}
{{- dict "groups" $groups | toYaml -}}
{{- end -}}

{{- define "tierscale.hasCRD" -}}
{{- if .ctx.Capabilities.APIVersions.Has .gvk -}}true{{- end -}}
{{- end -}}

{{/* PolicyRules from files/rbac.yaml entries, each preceded by its `why`. */}}
{{- define "tierscale.rules" }}
{{- range . }}
# {{ join "; " .why }}
- apiGroups: {{ toJson .apiGroups }}
  resources: {{ toJson .resources }}
  verbs: {{ toJson .verbs }}
{{- end }}
{{- end }}
