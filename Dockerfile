# The `vaultdb` server as a container image: `docker build -t vaultdb .`
#
# Two stages: the release build in the Rust toolchain image, then only the binary on a slim
# Debian (glibc, CA certificates for TLS to the clouds and to PostgreSQL, curl for the health
# check), run as an unprivileged user. deploy/README.md says how to configure it (a mounted
# vaultdb.toml, tokens and backend credentials from the environment) and what the checks of
# `cargo xtask test` cover; no container engine runs on the project's build machines, so the
# image itself is not built there.

# ---- build ----------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole workspace: the binary depends on its sibling crates, and Cargo.lock pins every
# dependency (--locked).
COPY . .
RUN cargo build --release --locked -p vaultdb \
    && install -D -m 0755 target/release/vaultdb /out/vaultdb

# ---- runtime --------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# Unpinned on purpose: the distribution's current security updates of these two packages are
# wanted, and bookworm removes superseded versions from its mirrors, so a pin would break
# the build after the next update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 vaultdb \
    && useradd --system --uid 10001 --gid vaultdb --home-dir /var/lib/vaultdb \
       --shell /usr/sbin/nologin vaultdb \
    && install -d -o vaultdb -g vaultdb -m 0750 /var/lib/vaultdb \
    && install -d -m 0755 /etc/vaultdb
COPY --from=build /out/vaultdb /usr/local/bin/vaultdb

# Configuration: mount a vaultdb.toml and point VAULTDB_CONFIG at it (the Kubernetes
# manifests mount it at /etc/vaultdb/vaultdb.toml); without one, the embedded default (three
# directories under the data directory, 2-of-3) serves, for a first look. The admin token
# comes from VAULTDB_TOKEN (or [[tokens]] hashes in the file), backend credentials from the
# variables the file names. Listening on every interface is what a container needs; the
# published port decides who reaches it.
ENV VAULTDB_LISTEN=0.0.0.0:8080 \
    VAULTDB_DATA_DIR=/var/lib/vaultdb \
    RUST_LOG=warn
WORKDIR /var/lib/vaultdb
VOLUME ["/var/lib/vaultdb"]
USER 10001:10001
EXPOSE 8080
# /health answers 200 while at least K backends answer, 503 below K.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/health"]
ENTRYPOINT ["/usr/local/bin/vaultdb"]
CMD ["serve"]
