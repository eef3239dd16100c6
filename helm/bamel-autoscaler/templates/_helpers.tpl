{{/* Labels of every object: the same as config/ (the chart and kustomize render one install). */}}
{{- define "bamel.labels" -}}
app.kubernetes.io/name: bamel-autoscaler
app.kubernetes.io/component: {{ . }}
{{- end }}

{{- define "bamel.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Pods never go to simulated (kwok) Nodes: they have no kubelet and no kernel. */}}
{{- define "bamel.realNodes" -}}
nodeAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    nodeSelectorTerms:
      - matchExpressions:
          - key: type
            operator: NotIn
            values: [kwok]
          - key: bamel.io/simulated
            operator: NotIn
            values: ["true"]
{{- end }}
