{{/* Chart name, truncated to 63 characters (DNS label). */}}
{{- define "vtts.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; the release name alone when it already contains the chart name. */}}
{{- define "vtts.fullname" -}}
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

{{/* The headless Service: one DNS A record per ready pod, for `vtts admin --all`. */}}
{{- define "vtts.headlessName" -}}
{{- printf "%s-headless" (include "vtts.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vtts.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vtts.labels" -}}
helm.sh/chart: {{ include "vtts.chart" . }}
{{ include "vtts.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "vtts.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vtts.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "vtts.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vtts.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The config TOML parsed, with the checks a wrong install would otherwise only show at run time.
Returns the parsed table as JSON (templates read it with fromJson).
*/}}
{{- define "vtts.config" -}}
{{- $cfg := fromToml .Values.config }}
{{- if hasKey $cfg "Error" }}
{{- fail (printf "config: invalid TOML: %s" $cfg.Error) }}
{{- end }}
{{- $server := default dict $cfg.server }}
{{- if or $server.api_keys $server.admin_keys }}
{{- fail "config: api_keys and admin_keys must stay empty here (a ConfigMap is not secret); use apiKeys.existingSecret and adminKeys.existingSecret" }}
{{- end }}
{{- if and $server.run_dir (ne $server.run_dir .Values.runDir.path) }}
{{- fail (printf "config: server.run_dir = %q must be runDir.path (%q), the writable emptyDir, or empty (a directory under $TMPDIR)" $server.run_dir .Values.runDir.path) }}
{{- end }}
{{- $cuda := false }}
{{- range $m := (default list $cfg.models) }}
{{- if hasPrefix "cuda" (default "cpu" $m.device) }}{{ $cuda = true }}{{ end }}
{{- end }}
{{- if and $cuda (not .Values.gpu.enabled) }}
{{- fail "config: a model has device = \"cuda\" but gpu.enabled is false (the pod would get no GPU)" }}
{{- end }}
{{- if and .Values.gpu.enabled (not $cuda) }}
{{- fail "gpu.enabled is true but no model in config has device = \"cuda\" (the GPU would sit idle)" }}
{{- end }}
{{- $cfg | toJson }}
{{- end }}

{{/* server.<name> of the config, or the server's own default. */}}
{{- define "vtts.serverSeconds" -}}
{{- $server := default dict (index . 0).server }}
{{- $v := index $server (index . 1) }}
{{- if kindIs "invalid" $v }}{{ index . 2 }}{{ else }}{{ $v }}{{ end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: preStop sleep + the longer of drain_timeout_s and shutdown_timeout_s
(what SIGTERM waits for before it kills) + 10 s for the processes to exit. An explicit value is checked.
*/}}
{{- define "vtts.gracePeriod" -}}
{{- $cfg := include "vtts.config" . | fromJson }}
{{- $drain := include "vtts.serverSeconds" (list $cfg "drain_timeout_s" 30.0) | float64 }}
{{- $shutdown := include "vtts.serverSeconds" (list $cfg "shutdown_timeout_s" 10.0) | float64 }}
{{- $sleep := .Values.lifecycle.preStopSleepSeconds | float64 }}
{{- $need := addf $sleep (maxf $drain $shutdown) | ceil | int }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $need 10 }}
{{- else if lt (int .Values.terminationGracePeriodSeconds) $need }}
{{- fail (printf "terminationGracePeriodSeconds=%v is shorter than preStopSleepSeconds + max(drain_timeout_s, shutdown_timeout_s) = %d: streams would be killed mid-way" .Values.terminationGracePeriodSeconds $need) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds | int }}
{{- end }}
{{- end }}

{{- define "vtts.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
