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

{{/*
The repository `make image` tags its build with. No registry serves it yet (release CI does not
publish it): pods get it only from an image loaded into the nodes (kind load docker-image, k3d
image import). Remove this and refwarden.checkImage once the image is published.
*/}}
{{- define "refwarden.unpublishedRepository" -}}
ghcr.io/refwarden/refwarden
{{- end }}

{{- define "refwarden.imageIsUnpublished" -}}
{{- if eq .Values.image.repository (include "refwarden.unpublishedRepository" .) }}true{{ end }}
{{- end }}

{{/*
Fails at render time (helm install/template, before anything is created) on image settings that can
never start a pod with the unpublished default image, instead of leaving it in ImagePullBackOff.
*/}}
{{- define "refwarden.checkImage" -}}
{{- if include "refwarden.imageIsUnpublished" . }}
{{- $built := printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- $how := printf "build it with `make image` and load it into the nodes (kind load docker-image %s, k3d image import %s), or push it to your registry and set image.repository/image.tag" $built $built }}
{{- if .Values.image.digest }}
{{- fail (printf "image.digest is set but %s is not published to any registry, so no digest of it can be pulled: push your build and set image.repository (and image.digest), or %s" .Values.image.repository $how) }}
{{- end }}
{{- if eq .Values.image.pullPolicy "Always" }}
{{- fail (printf "image.pullPolicy=Always makes the kubelet pull %s, which is not published to any registry (the pods would stay in ImagePullBackOff): keep IfNotPresent (or Never) and %s" $built $how) }}
{{- end }}
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
