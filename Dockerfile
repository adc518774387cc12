# syntax=docker/dockerfile:1
#
# ferry's container image: one static binary on distroless, running as a
# non-root user. The same image runs `ferry worker`, `ferry run`, `ferry sync`
# and every other command.
#
#   docker build -t ferry:dev --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg REVISION=$(git rev-parse HEAD) --build-arg CREATED=$(date -u +%FT%TZ) .
#
# The same ferry with the DuckDB connector, which is cgo (a prebuilt C++
# library), is the target `duckdb` (docs/decisions/2026-12-07-duckdb-destination.md):
#
#   docker build --target duckdb -t ferry:dev-duckdb --build-arg VERSION=... .
#
# The `go build` lines below are run as written by deploy/check (scripts/check-deploy),
# which checks them against the Makefile's build target and the Go version in go.mod.

ARG GO_VERSION=1.26.8

# The build stage runs on the builder's own platform and cross-compiles, so a
# multi-platform build (--platform linux/amd64,linux/arm64) needs no emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w -X github.com/ferrydb/ferry/internal/cli.Version=${VERSION}" -o /out/ferry ./cmd/ferry
# An empty state directory for the runtime stage, owned by the nonroot user.
RUN mkdir -p /out/state

# The DuckDB build: cgo, so it runs on the target platform (a multi-platform
# build emulates the others) with its C toolchain, and links DuckDB's library.
FROM golang:${GO_VERSION} AS build-duckdb
WORKDIR /src
ENV GOTOOLCHAIN=local CGO_ENABLED=1 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -tags duckdb -trimpath -ldflags="-s -w -X github.com/ferrydb/ferry/internal/cli.Version=${VERSION}" -o /out/ferry ./cmd/ferry
RUN mkdir -p /out/state

# distroless/cc: distroless/static plus glibc, libgcc and libstdc++, which
# DuckDB's library needs.
FROM gcr.io/distroless/cc-debian12:nonroot AS duckdb
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="ferry (with DuckDB)" \
      org.opencontainers.image.description="Copies a database into another and keeps it in sync: parallel copy, then change data capture; with the DuckDB connector" \
      org.opencontainers.image.source="https://github.com/ferrydb/ferry" \
      org.opencontainers.image.url="https://github.com/ferrydb/ferry" \
      org.opencontainers.image.documentation="https://github.com/ferrydb/ferry/blob/main/docs/connectors.md#duckdb" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build-duckdb /out/ferry /usr/local/bin/ferry
COPY --from=build-duckdb --chown=65532:65532 /out/state /var/lib/ferry
ENV HOME=/home/nonroot XDG_STATE_HOME=/var/lib/ferry
WORKDIR /home/nonroot
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["--help"]

# The default image, the last stage.
# distroless/static: CA certificates, tzdata and /etc/passwd with a nonroot
# user (65532), no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="ferry" \
      org.opencontainers.image.description="Copies a database into another and keeps it in sync: parallel copy, then change data capture" \
      org.opencontainers.image.source="https://github.com/ferrydb/ferry" \
      org.opencontainers.image.url="https://github.com/ferrydb/ferry" \
      org.opencontainers.image.documentation="https://github.com/ferrydb/ferry/blob/main/docs/scaling.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /out/ferry /usr/local/bin/ferry
# The single-process mode keeps its state under $XDG_STATE_HOME/ferry; point it
# at a directory a volume can be mounted on (scale-out mode keeps no local state).
COPY --from=build --chown=65532:65532 /out/state /var/lib/ferry
ENV HOME=/home/nonroot XDG_STATE_HOME=/var/lib/ferry
WORKDIR /home/nonroot
USER 65532:65532
# 8080: the dashboard of `ferry run --ui` / `ferry sync --ui`; 9090: health
# and metrics of `ferry worker --health-addr`.
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["--help"]
