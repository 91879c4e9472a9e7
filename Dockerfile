# Strata's image: build with the etcd metadata store and HDFS under stores, then a slim runtime
# as a non-root user. `make image` assembles the same runtime with buildah, without a registry.
#   docker build -t strata:0.1.0 .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin strata --features etcd,hdfs \
    && install -m 0755 target/release/strata /strata

FROM debian:bookworm-slim
# CA certificates: TLS to cloud under stores verifies against the system's roots.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 strata \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/strata --shell /usr/sbin/nologin strata \
    && install -d -o 10001 -g 10001 /var/lib/strata
COPY --from=build /strata /usr/local/bin/strata
LABEL org.opencontainers.image.title="strata" \
      org.opencontainers.image.description="S3 endpoint that caches the data of slower stores (gateway, master, worker)" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
WORKDIR /var/lib/strata
EXPOSE 9000 9100 9200
ENTRYPOINT ["/usr/local/bin/strata"]
CMD ["local", "--listen", "0.0.0.0:9000", "--data-dir", "/var/lib/strata"]
