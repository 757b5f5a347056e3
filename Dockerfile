# syntax=docker/dockerfile:1
# kafka-cloud-lag-exporter container image.
#   docker build -t kafka-cloud-lag-exporter:dev \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
# Pin both base images by digest in your registry mirror for reproducible builds.

# Build stage: the same `cargo build --release --locked` as CI, with glibc of bookworm,
# which is what the runtime image (distroless, Debian 12) has.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and target dir between builds (BuildKit); the binary
# is copied out of the cached target dir because cache mounts are not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/kafka-cloud-lag-exporter /out/kafka-cloud-lag-exporter

# Runtime stage: glibc, libgcc and CA certificates (the exporter uses rustls with the OS
# trust store to reach the cloud APIs), no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kafka-cloud-lag-exporter" \
      org.opencontainers.image.description="Prometheus exporter of consumer-group lag for Alibaba Cloud (alikafka) and Tencent Cloud (CKafka) managed Kafka" \
      org.opencontainers.image.source="https://github.com/kafka-cloud-lag-exporter/kafka-cloud-lag-exporter" \
      org.opencontainers.image.documentation="https://github.com/kafka-cloud-lag-exporter/kafka-cloud-lag-exporter/blob/main/README.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=builder /out/kafka-cloud-lag-exporter /usr/local/bin/kafka-cloud-lag-exporter
# distroless "nonroot" (65532), numeric so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 9758
# No HEALTHCHECK: there is no shell or curl in the image; Kubernetes probes /healthz and
# /readyz instead. The config path matches the ConfigMap mount of deploy/.
ENTRYPOINT ["/usr/local/bin/kafka-cloud-lag-exporter"]
CMD ["--config.file=/etc/kafka-cloud-lag-exporter/config.yaml"]
