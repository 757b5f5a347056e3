{{/* Chart name, overridable. */}}
{{- define "kcle.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or the release name when it already contains the chart name. */}}
{{- define "kcle.fullname" -}}
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

{{- define "kcle.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kcle.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kcle.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kcle.labels" -}}
helm.sh/chart: {{ include "kcle.chart" . }}
{{ include "kcle.selectorLabels" . }}
app.kubernetes.io/component: exporter
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kcle.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kcle.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kcle.credentialsSecret" -}}
{{- default (printf "%s-credentials" (include "kcle.fullname" .)) .Values.credentials.existingSecret }}
{{- end }}

{{- define "kcle.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* HTTPS when the web config turns TLS on. */}}
{{- define "kcle.tls" -}}
{{- if and .Values.webConfig.enabled .Values.webConfig.tls }}true{{ end }}
{{- end }}

{{/* The ServiceAccount annotations of pod identity, as the clouds' webhooks read them. */}}
{{- define "kcle.podIdentityAnnotations" -}}
{{- $p := .Values.podIdentity }}
{{- if and (eq $p.provider "ack-rrsa") $p.role }}
pod-identity.alibabacloud.com/role-name: {{ $p.role | quote }}
{{- else if and (eq $p.provider "tke") $p.role }}
tke.cloud.tencent.com/role-arn: {{ $p.role | quote }}
tke.cloud.tencent.com/audience: {{ include "kcle.podIdentityAudience" . | quote }}
{{- end }}
{{- end }}

{{/* The audience of the projected token: the OIDC provider's client id. */}}
{{- define "kcle.podIdentityAudience" -}}
{{- $p := .Values.podIdentity }}
{{- if $p.projectedToken.audience }}{{ $p.projectedToken.audience }}
{{- else if eq $p.provider "tke" }}sts.cloud.tencent.com
{{- else }}sts.aliyuncs.com
{{- end }}
{{- end }}
