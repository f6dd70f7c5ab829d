{{- define "llmfleet.name" -}}llmfleet{{- end -}}

{{- define "llmfleet.fullname" -}}
{{- if contains "llmfleet" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-llmfleet" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "llmfleet.selectorLabels" -}}
app.kubernetes.io/name: llmfleet
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "llmfleet.labels" -}}
{{ include "llmfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "llmfleet.membersNamespace" -}}
{{- .Values.membersNamespace | default .Release.Namespace -}}
{{- end -}}

{{- define "llmfleet.tenantNamespaces" -}}
{{- $namespaces := .Values.tenantNamespaces | default .Values.watchNamespaces -}}
{{- toJson $namespaces -}}
{{- end -}}

{{/* Registration Secret name of a member entry. */}}
{{- define "llmfleet.memberSecret" -}}
{{- if .member.existingSecret -}}
{{- .member.existingSecret -}}
{{- else -}}
{{- printf "cluster-%s" .member.name -}}
{{- end -}}
{{- end -}}

{{- define "llmfleet.memberSecrets" -}}
{{- $names := list -}}
{{- range .Values.members -}}
{{- $names = append $names (include "llmfleet.memberSecret" (dict "member" .)) -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}
