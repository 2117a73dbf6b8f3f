# Builds the segpipe binary for compose.yaml's `api` and `pipeline` services
# (and any other use).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/segpipe /usr/local/bin/segpipe
# Relative outputs (segpipe.db, segpipe-report.html) land here.
WORKDIR /work
EXPOSE 8000
ENTRYPOINT ["segpipe"]
CMD ["serve-api", "--bind", "0.0.0.0:8000"]
