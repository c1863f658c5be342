{{/* Chart name, 63 characters at most. */}}
{{- define "sip-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name if it already contains the chart name, else release-chart.
At most 54 characters, so that "-registrar-rpc" still fits in a 63-character name.
*/}}
{{- define "sip-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sip-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "sip-operator.labels" -}}
helm.sh/chart: {{ include "sip-operator.chart" . }}
app.kubernetes.io/name: {{ include "sip-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sip-operator
{{- end }}

{{/* The operator's pods. */}}
{{- define "sip-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sip-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The bundled Kamailio's pods. */}}
{{- define "sip-operator.registrar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sip-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: registrar
{{- end }}

{{- define "sip-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sip-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sip-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "sip-operator.leaseName" -}}
{{- default (include "sip-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "sip-operator.registrar.fullname" -}}
{{- printf "%s-registrar" (include "sip-operator.fullname" .) }}
{{- end }}

{{- define "sip-operator.registrar.rpcServiceName" -}}
{{- printf "%s-registrar-rpc" (include "sip-operator.fullname" .) }}
{{- end }}

{{- define "sip-operator.registrar.tokenSecretName" -}}
{{- printf "%s-registrar-token" (include "sip-operator.fullname" .) }}
{{- end }}

{{/*
The rules the operator needs in every namespace it watches (a ClusterRole in cluster mode, a
Role per namespace otherwise). tests/support/operator-rbac.yaml grants the integration tests
the same rights.
*/}}
{{- define "sip-operator.rbac.watchRules" -}}
# The three kinds: read and watch them, add and remove the SipUser finalizer.
- apiGroups: ["sipoperator.io"]
  resources: ["sipdomains", "sipprofiles", "sipusers"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["sipoperator.io"]
  resources: ["sipdomains/status", "sipprofiles/status", "sipusers/status"]
  verbs: ["get", "patch", "update"]
# Invites: read and watched (the controller, and every replica's invite page), the owner
# reference to the user set, status written (issued, expired, used).
- apiGroups: ["sipoperator.io"]
  resources: ["sipuserinvites"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["sipoperator.io"]
  resources: ["sipuserinvites/status"]
  verbs: ["get", "patch", "update"]
# A controller ownerReference with blockOwnerDeletion on a credentials Secret needs this.
- apiGroups: ["sipoperator.io"]
  resources: ["sipusers/finalizers"]
  verbs: ["update"]
# Credentials Secrets (written), imported password and registrar token Secrets (read).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# The events Recorder.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{ include "sip-operator.rbac.registrarRules" . }}
{{- end }}

{{/* Reading a registrar Service's endpoints. */}}
{{- define "sip-operator.rbac.registrarRules" -}}
# Registrar endpoints behind a Service (watched: no read per reconcile).
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch"]
{{- end }}
