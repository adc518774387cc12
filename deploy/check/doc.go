// Package check validates ferry's deployment files offline, without a
// container engine or a cluster: the Helm chart (linted, rendered, and every
// rendered object decoded strictly against the Kubernetes API types), the
// compose file (loaded and validated by the compose specification's library),
// and the Dockerfile (parsed by BuildKit's parser, its go build line run as
// written and compared with the project's own build).
//
// It is a separate module so that Kubernetes, Helm, compose and BuildKit stay
// out of ferry's go.mod. scripts/check-deploy runs its tests.
package check
