{{/* The runner's pod template, shared by its Job and its Deployment. */}}
{{- define "ferry.runnerPodTemplate" -}}
{{- $r := .Values.runner -}}
metadata:
  labels:
    {{- include "ferry.componentLabels" (dict "root" . "component" "runner") | nindent 4 }}
    {{- with $r.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $r.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  restartPolicy: {{ if eq $r.kind "Job" }}OnFailure{{ else }}Always{{ end }}
  serviceAccountName: {{ include "ferry.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $r.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: runner
      image: {{ include "ferry.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - run
        {{- include "ferry.temporalArgs" . | nindent 8 }}
        - --source
        - {{ required "runner.source is required when runner.enabled (a connection name)" $r.source | quote }}
        - --destination
        - {{ required "runner.destination is required when runner.enabled (a connection name)" $r.destination | quote }}
        {{- with $r.flowName }}
        - --name
        - {{ . | quote }}
        {{- end }}
        {{- if $r.ui.enabled }}
        - --ui
        - {{ printf "0.0.0.0:%v" $r.ui.port | quote }}
        {{- with $r.ui.linger }}
        - --ui-linger
        - {{ . | quote }}
        {{- end }}
        {{- end }}
        {{- range $r.flowArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        {{- include "ferry.otelEnv" (dict "root" . "component" "runner") | nindent 8 }}
        {{- if $r.ui.enabled }}
        # The dashboard listens beyond loopback, so every request but the
        # health checks must carry this token.
        - name: FERRY_UI_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ include "ferry.uiTokenSecret" . | quote }}
              key: {{ $r.ui.secretKey | quote }}
        {{- end }}
        {{- with $r.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- if $r.ui.enabled }}
      ports:
        - name: dashboard
          containerPort: {{ $r.ui.port }}
          protocol: TCP
      {{- with $r.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $r.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- end }}
      resources:
        {{- toYaml $r.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
  {{- with $r.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $r.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $r.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
