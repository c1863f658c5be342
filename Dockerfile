# syntax=docker/dockerfile:1
#
# The sip-operator image: one statically linked binary on distroless, running as non-root.
#
#   docker buildx build --load -t sip-operator:ci .
#   docker run --rm sip-operator:ci --version
#
# Static (musl) rather than glibc on distroless/cc: the crate has no C dependency but ring
# (TLS through rustls, no OpenSSL), which builds for musl with musl-tools' musl-gcc. A static
# binary needs no libc in the image, so the runtime is distroless/static (CA certificates,
# tzdata, /etc/passwd with the nonroot user, no shell, no package manager) and the binary does
# not depend on the runtime's Debian release. The cost is musl's allocator, slower than
# glibc's under many threads; the operator is bound by API-server round trips, not malloc.
#
# The target is the builder's own architecture (uname -m: x86_64 or aarch64), so the same file
# builds linux/amd64 and linux/arm64 images without a cross toolchain.

# The Rust release to build with; the crate needs >= 1.89 (Cargo.toml rust-version).
ARG RUST_VERSION=1

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$(uname -m)-unknown-linux-musl"

# Debug info is of no use in the image (panics keep their messages and symbol names).
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    CARGO_TERM_COLOR=never

WORKDIR /build

# Dependencies first, in a layer of their own that only Cargo.toml/Cargo.lock invalidate:
# build them against empty stand-ins for every target the manifest declares (the library,
# both binaries, the bench: Cargo refuses a manifest whose declared targets are missing).
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src/bin benches \
 && : > src/lib.rs \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > src/bin/crdgen.rs \
 && echo 'fn main() {}' > benches/scale.rs \
 && cargo build --release --locked --target "$(uname -m)-unknown-linux-musl" --bin sip-operator \
 && rm -rf src benches

# The real sources. COPY keeps their modification times, which can be older than the stand-ins
# built above: touch the crate roots so that Cargo rebuilds the crate rather than ship the
# stand-in. Then check that the binary is static and runs.
COPY src ./src
COPY benches ./benches
RUN touch src/lib.rs src/main.rs src/bin/crdgen.rs \
 && cargo build --release --locked --target "$(uname -m)-unknown-linux-musl" --bin sip-operator \
 && install -D -m 0755 "target/$(uname -m)-unknown-linux-musl/release/sip-operator" /out/sip-operator \
 && readelf -lW /out/sip-operator > /tmp/program-headers \
 && if grep -q 'program interpreter' /tmp/program-headers; then \
      echo 'sip-operator is dynamically linked; expected a static binary' >&2; exit 1; \
    fi \
 && /out/sip-operator --version

FROM gcr.io/distroless/static-debian12:nonroot

# Where the image was built from; CI passes its repository URL and commit.
ARG SOURCE_URL=https://github.com/sip-operator/sip-operator
ARG REVISION=""

LABEL org.opencontainers.image.title="sip-operator" \
      org.opencontainers.image.description="Kubernetes operator that manages SIP domains, profiles and users as custom resources" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${REVISION}"

COPY --from=builder /out/sip-operator /sip-operator

# nonroot (65532), numerically so that runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
# /healthz, /readyz and /metrics (--http-addr, default 0.0.0.0:8080).
EXPOSE 8080
ENTRYPOINT ["/sip-operator"]
