# The engine test image's stand-in for s6-overlay's tarballs (which only the
# production build downloads): the `s6-overlay` stage of docker/Dockerfile,
# given to `podman build` as `--build-context s6-overlay=docker-image://...`
# (docker/engine/build). Like the real stage it leaves the files to lay onto
# the image in /s6-root: Debian sid's s6 2.15 and execline with their
# libraries, s6-overlay's /command links and with-contenv, and /init with
# the stage scripts of docker/engine/overlay (s6-rc and s6-linux-init are
# not packaged in Debian).
ARG S6_SID_IMAGE
FROM ${S6_SID_IMAGE}
SHELL ["/bin/sh", "-eu", "-c"]
COPY overlay/ /s6-root/
COPY with-contenv /s6-root/command/with-contenv
# Every file of the s6 and execline packages and of their libraries
# (documentation aside), then s6-overlay's /command links to the programs.
RUN dpkg-query -W -f '${Package}\n' \
        | grep -E '^(s6|execline|libskarnet[0-9.]*|libs6-[0-9.]*|libexecline[0-9.]*)$' \
        | xargs dpkg-query -L \
        | grep -v '^/usr/share/' \
        | while read -r file; do \
            if [ -f "$file" ] || [ -L "$file" ]; then cp -a --parents "$file" /s6-root/; fi; \
        done \
    && for tool in /usr/bin/s6-* /usr/bin/execlineb /usr/lib/execline/bin/*; do \
        [ -e "/s6-root/command/${tool##*/}" ] || ln -s "$tool" /s6-root/command/; \
    done \
    && chmod 0755 /s6-root/command/with-contenv
