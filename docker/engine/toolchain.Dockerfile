# The engine test image's stand-in for RUST_IMAGE (docker/engine/build): a
# Debian 13 image whose `cargo` hands back the binaries ./build-static made
# on the host instead of compiling (no crates can be fetched in a build), so
# that docker/Dockerfile's `build` stage runs as written.
ARG BASE_IMAGE=localhost/debian:13
FROM ${BASE_IMAGE}
COPY cargo rustc /usr/local/bin/
COPY rustc-vV /usr/local/share/hermes-engine/rustc-vV
COPY hermes-s6 hermes-s6-helper /usr/local/share/hermes-engine/prebuilt/
