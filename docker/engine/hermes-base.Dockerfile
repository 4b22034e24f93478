# A Hermes-like base image for the engine tests (docker/engine/build): the
# Debian 13 base with a stand-in `hermes` (the emulation's hermes-standin)
# and the Hermes image's PATH, which names a directory of the volume that
# hermes can write (/opt/data/.local/bin).
ARG BASE_IMAGE=localhost/debian:13
FROM ${BASE_IMAGE}
COPY hermes /opt/hermes/bin/hermes
ENV PATH=/opt/hermes/bin:/opt/data/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
