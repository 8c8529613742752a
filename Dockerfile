# connector-host as a container image that follows Airbyte's connector-image conventions, so
# Airbyte (on Kubernetes or Docker) runs every connector of this workspace as a source.
#
#   docker build -t datahub/source-qlik-sense .                                 # Qlik Sense
#   docker build --build-arg CONNECTOR=scim -t datahub/source-scim .            # SCIM 2.0
#
# Airbyte starts the image with `spec`, `check --config …`, `discover --config …` or
# `read --config … --catalog … [--state …]`; the entrypoint makes that
# `connector-host airbyte spec …`, and CONNECTOR_HOST_CONNECTOR names the connector.
# On Kubernetes, Airbyte runs `$AIRBYTE_ENTRYPOINT` from a shell of its own, hence the
# Debian base rather than a shell-less one. Other schedulers run `connector-host run …`
# by overriding the entrypoint (`command:` in a Kubernetes manifest).

# The toolchain the workspace is built and tested with.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# No `demo`: a production image leaves out the built-in simulator and its web server.
RUN cargo build --release --locked --package host --bin connector-host --no-default-features \
    && install -m 0755 target/release/connector-host /connector-host

FROM debian:bookworm-slim
# Which connector the image serves, as `connector-host list` shows it.
ARG CONNECTOR=qlik-sense
# The workspace version (`version` in Cargo.toml); a test keeps the two equal.
ARG VERSION=0.1.0
COPY --from=build /connector-host /usr/local/bin/connector-host
# TLS roots are compiled in (webpki-roots): no CA bundle to install or keep current.
ENV CONNECTOR_HOST_CONNECTOR=${CONNECTOR}
ENV AIRBYTE_ENTRYPOINT="/usr/local/bin/connector-host airbyte"
ENTRYPOINT ["/usr/local/bin/connector-host", "airbyte"]
LABEL io.airbyte.name="datahub/source-${CONNECTOR}" \
      io.airbyte.version="${VERSION}" \
      org.opencontainers.image.description="connector-host: the ${CONNECTOR} connector as an Airbyte source"
# Unprivileged: the binary needs nothing beyond reading the files Airbyte mounts.
USER 1000:1000
