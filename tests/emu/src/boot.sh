#!/bin/sh
# Boot script of the emulated Hermes container.
#
# Runs as PID 1 of a fresh mount + PID namespace (unshare --mount --pid --fork
# --propagation private), builds the container's root on a tmpfs, pivots into
# it and finally execs s6-svscan, which stays PID 1, as s6-overlay's /init
# leaves it. Every mount is private to the namespace: the host sees none of
# them and they vanish with the namespace.
#
# Inputs (environment, set by the Rust side):
#   EMU_DIR        per-container temp dir: root/ (mount point), stage/ (files
#                  prepared by the test process), volume/ (/opt/data), devlog
#   USERLAND       root of the Debian tree whose /usr and /etc the container
#                  gets: / (the host's, s6 2.11) or a tests/rootfs/make root
#   SERVICE_CAP    s6-svscan -c; empty: no -c, as s6-overlay runs it
#   HELPER HELPER_GID HELPER_MODE   helper binary, its group and mode
#   FRONTEND STANDIN                 binaries for /usr/local/bin
#   SYSLOG         1: bind $EMU_DIR/devlog at /dev/log
#   NO_NEW_PRIVS   1: s6-svscan (so every service) runs with no_new_privs
#   BOUNDING_SET   setpriv --bounding-set= list for s6-svscan (so every
#                  service); empty: every capability
#   NON_ROOT       1: `docker run --user HERMES_UID`: /run is hermes's, and
#                  s6-svscan (so every service) runs as HERMES_UID:HERMES_GID
#                  with hermes's groups from /etc/group
#   HERMES_UID HERMES_GID            the hermes user's ids
#   CONTAINER_PATH PATH of s6-svscan (and so of every service)
#   $EMU_DIR/stage/init-env/  the rest of s6-svscan's environment, one file
#                  per variable (empty unless S6_KEEP_ENV=1)

set -eu
umask 022

# Trace and errors go to boot.log; s6-svscan gets the original stderr back.
exec 3>&2 2>>"$EMU_DIR/boot.log"
# s6-svscan -d4 writes a newline there once it is ready (s6-overlay's
# s6-linux-init reads it); nothing here waits on it.
exec 4>>"$EMU_DIR/svscan-ready"
set -x
U=${USERLAND%/}

R="$EMU_DIR/root"
S="$EMU_DIR/stage"

mount -t tmpfs -o mode=0755 hermes-emu-root "$R"
cp -a "$U/etc" "$R/"
# Generated identities, /command, the merged-/usr symlinks and empty mount points.
cp -a "$S/rootfs/." "$R/"
set +x # the expanded list is long
for tool in "$U"/usr/lib/execline/bin/* "$U"/usr/bin/s6-*; do
    ln -s "${tool#"$U"}" "$R/command/"
done
set -x

mount --bind -o ro "$U/usr" "$R/usr"
mount -t tmpfs -o mode=0755 hermes-emu-usr-local "$R/usr/local"
mkdir "$R/usr/local/bin" "$R/usr/local/sbin"
install -m 0755 "$FRONTEND" "$R/usr/local/bin/hermes-s6"
install -m 0755 "$STANDIN" "$R/usr/local/bin/hermes"
# Not nosuid: the helper's setuid bit must take effect.
mount -t tmpfs -o mode=0755 hermes-emu-libexec "$R/usr/libexec"
install -o 0 -g "$HELPER_GID" -m "$HELPER_MODE" "$HELPER" "$R/usr/libexec/hermes-s6-helper"

mount -t tmpfs -o mode=0755,nosuid hermes-emu-dev "$R/dev"
for node in null zero full random urandom tty; do
    : >"$R/dev/$node"
    mount --bind "/dev/$node" "$R/dev/$node"
done
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev hermes-emu-shm "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
if [ "$SYSLOG" = 1 ]; then
    : >"$R/dev/log"
    mount --bind "$EMU_DIR/devlog" "$R/dev/log"
fi

# This shell is PID 1 of the new PID namespace, so this proc shows only it.
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t tmpfs -o mode=1777,nosuid,nodev hermes-emu-tmp "$R/tmp"
mount -t tmpfs -o mode=0755,nosuid,nodev hermes-emu-run "$R/run"
cp -a "$S/run/." "$R/run/"
# s6-svscan's environment, as "NAME=value" positional parameters (values
# kept whole, trailing newlines included).
set +x
set --
for var in "$S"/init-env/*; do
    [ -e "$var" ] || continue
    value=$(cat "$var" && echo .)
    set -- "$@" "${var##*/}=${value%.}"
done
set -x
if [ -n "$SERVICE_CAP" ]; then cap="-c $SERVICE_CAP"; else cap=; fi
mount --bind "$EMU_DIR/volume" "$R/opt/data"

cd "$R"
mkdir .old-root
pivot_root . .old-root
cd /
umount -l /.old-root
rmdir /.old-root
if [ "$NON_ROOT" = 1 ]; then
    # s6-overlay for a non-root user: /run must be that user's, and what
    # its stage 0 puts there (the scan dir, .s6-svscan, s6-rc's live
    # directory, the container environment) is made by that user. (The
    # mounts above left libmount's /run/mount there too.)
    chown -hR "$HERMES_UID:$HERMES_GID" /run
fi

# Stage 2 of s6-overlay starts here: s6-svscan comes up first, then the
# cont-init scripts run (driven from the Rust side: Container::stage2).
set +x
exec 2>&3 3>&-
# s6-overlay's PID 1: s6-svscan -d4 -- /run/service (plus -c when asked for).
# As hermes in a non-root container, as docker run --user sets it up: the
# user's uid, its primary group and its groups from /etc/group.
privs=
if [ "$NON_ROOT" = 1 ]; then
    privs="--reuid=$HERMES_UID --regid=$HERMES_GID --init-groups"
fi
if [ "$NO_NEW_PRIVS" = 1 ]; then privs="$privs --no-new-privs"; fi
if [ -n "$BOUNDING_SET" ]; then privs="$privs --bounding-set=$BOUNDING_SET"; fi
if [ -n "$privs" ]; then
    # shellcheck disable=SC2086 # $privs and $cap are words on purpose
    exec /usr/bin/setpriv $privs \
        /usr/bin/env -i PATH="$CONTAINER_PATH" "$@" /usr/bin/s6-svscan $cap -d4 -- /run/service
fi
# shellcheck disable=SC2086
exec /usr/bin/env -i PATH="$CONTAINER_PATH" "$@" /usr/bin/s6-svscan $cap -d4 -- /run/service
