{{/* Chart name, truncated to a DNS label. */}}
{{- define "refwarden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "refwarden.fullname" -}}
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

{{- define "refwarden.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "refwarden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "refwarden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "refwarden.labels" -}}
helm.sh/chart: {{ include "refwarden.chart" . }}
{{ include "refwarden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: refwarden
{{- end }}

{{- define "refwarden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "refwarden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "refwarden.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Namespaces where Secrets/ConfigMaps may be read (default: the release namespace). */}}
{{- define "refwarden.secretNamespaces" -}}
{{- $ns := .Values.rbac.secretNamespaces | default (list .Release.Namespace) }}
{{- toJson (uniq $ns) }}
{{- end }}

{{/*
The registries to render as RegistryProfiles: the default from `oci:` (when registryUrl is set)
and every entry of `oci.registries`, as a JSON list of objects with a resolved name.
*/}}
{{- define "refwarden.registries" -}}
{{- $out := list }}
{{- $oci := .Values.oci }}
{{- if $oci.registryUrl }}
{{- $d := omit $oci "registries" | deepCopy }}
{{- $_ := set $d "name" (default (include "refwarden.fullname" .) $oci.name) }}
{{- $out = append $out $d }}
{{- end }}
{{- range $oci.registries }}
{{- $out = append $out (deepCopy .) }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{- define "refwarden.credentialsSecretName" -}}
{{- printf "%s-credentials" . | trunc 253 }}
{{- end }}

{{- define "refwarden.caConfigMapName" -}}
{{- printf "%s-ca" . | trunc 253 }}
{{- end }}
