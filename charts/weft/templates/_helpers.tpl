{{/* Labels of every object; the Deployment's selector leaves out the version. */}}
{{- define "weft.selectorLabels" -}}
app.kubernetes.io/name: weft-controller
app.kubernetes.io/part-of: weft
{{- end }}

{{- define "weft.labels" -}}
{{ include "weft.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
{{- end }}

{{/* The controller's identity names hard-code its namespace. */}}
{{- define "weft.namespaceCheck" -}}
{{- if ne .Release.Namespace "weft-system" }}
{{- fail (printf "Weft's control plane runs in the weft-system namespace, not %q: helm install weft charts/weft --namespace weft-system --create-namespace ..." .Release.Namespace) }}
{{- end }}
{{- end }}

{{- define "weft.identityRequired" -}}
the identity trust anchors and issuer are required, as for Linkerd's chart: helm install weft charts/weft --namespace weft-system --set-file identityTrustAnchorsPEM=ca.crt --set-file identity.issuer.tls.crtPEM=issuer.crt --set-file identity.issuer.tls.keyPEM=issuer.key (or `weft install`, which generates them)
{{- end }}

{{/* A PEM value as it is stored: trimmed, with one final newline. */}}
{{- define "weft.pem" -}}
{{ . | trim | printf "%s\n" }}
{{- end }}

{{/* A string for inject.yaml, quoted; empty is null (unset). */}}
{{- define "weft.optional" -}}
{{- if . }}{{ . | quote }}{{ else }}null{{ end }}
{{- end }}

{{/* A container's resources from {cpu: {request, limit}, memory: {...}}; empty ones are left out. */}}
{{- define "weft.resources" -}}
{{- $requests := dict }}
{{- $limits := dict }}
{{- with .cpu.request }}{{ $_ := set $requests "cpu" (toString .) }}{{ end }}
{{- with .memory.request }}{{ $_ := set $requests "memory" (toString .) }}{{ end }}
{{- with .cpu.limit }}{{ $_ := set $limits "cpu" (toString .) }}{{ end }}
{{- with .memory.limit }}{{ $_ := set $limits "memory" (toString .) }}{{ end }}
{{- $resources := dict }}
{{- if $requests }}{{ $_ := set $resources "requests" $requests }}{{ end }}
{{- if $limits }}{{ $_ := set $resources "limits" $limits }}{{ end }}
{{- toJson $resources }}
{{- end }}
