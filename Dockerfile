# One image for every Orderly target: `serve --target users|orders|payments|delivery|gateway`
# (set by ORDERLY_TARGET), or `up` for everything in one container.
#
#   docker build -t orderly .
#   docker run --rm -p 8080:8080 -e ORDERLY_TARGET=gateway orderly

# Build: the release binary with jemalloc (it gives memory back after a burst), with the crate
# registry and target dir cached between builds.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --features orderly-cli/jemalloc --bin orderly \
    && cp target/release/orderly /usr/local/bin/orderly

# Run: glibc and CA certificates only, no shell, a non-root user (uid 65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/orderly /usr/local/bin/orderly
USER nonroot:nonroot
WORKDIR /home/nonroot
# gateway HTTP, admin HTTP (/metrics, /healthz, /readyz), gRPC users, orders, payments, delivery.
EXPOSE 8080 9090 50051 50052 50053 50054
ENV ORDERLY_ADMIN_LISTEN=0.0.0.0:9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/orderly", "check", "--admin", "127.0.0.1:9090"]
ENTRYPOINT ["/usr/local/bin/orderly"]
CMD ["serve"]
