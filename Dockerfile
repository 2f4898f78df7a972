# syntax=docker/dockerfile:1
# refwarden controller image: build with the Rust toolchain, ship only the binary on distroless.
#   make image                      # docker build -t refwarden:dev .
#   docker build --build-arg PROFILE=release -t ghcr.io/refwarden/refwarden:0.1.0 .

# ---- build: glibc binary (Debian bookworm, matching the distroless cc-debian12 runtime) ----
FROM rust:1-bookworm AS build
WORKDIR /src
# Manifests first so the dependency build is cached across source changes.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY testkit ./testkit
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release --bin refwarden \
 && install -D -m 0755 target/release/refwarden /out/refwarden

# ---- runtime: distroless (glibc, libgcc, CA certificates; no shell, no package manager) ----
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="refwarden" \
      org.opencontainers.image.description="OCI referrers checks for Kubernetes (presence of signatures, SBOMs, attestations)" \
      org.opencontainers.image.source="https://github.com/refwarden/refwarden" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/refwarden /usr/local/bin/refwarden
# distroless "nonroot" = 65532:65532, the chart's runAsUser/runAsGroup.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/refwarden"]
CMD ["controller"]
