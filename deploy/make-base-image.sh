#!/usr/bin/env bash
# make-base-image.sh [TAG] — build the local base image for deploy/Dockerfile.* without any container registry.
#
# debootstraps a minimal Debian bookworm (variant minbase) with python3 + venv + pip + ca-certificates from the
# Debian mirror, trims it, and `docker import`s it as TAG (default inferload/base:bookworm). Needs root,
# debootstrap (apt-get install debootstrap) and a running Docker engine. Takes ~2-4 minutes; ~150 MB image.
#   DEBIAN_MIRROR=http://deb.debian.org/debian   mirror to bootstrap from
#   SKIP_UPGRADE=1                                 skip applying bookworm-security updates
#   EXTRA_CA_DIR=/usr/local/share/ca-certificates  trust these extra *.crt CAs in the image (a TLS-intercepting
#                                                  proxy between the build and PyPI needs its CA trusted)
# Where a registry is reachable you can skip this and build with --build-arg BASE_IMAGE=python:3.11-slim-bookworm.
set -euo pipefail

TAG=${1:-inferload/base:bookworm}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

[ "$(id -u)" -eq 0 ] || { echo "make-base-image: run as root (debootstrap needs it)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "make-base-image: debootstrap not found (apt-get install debootstrap)" >&2; exit 1; }
command -v docker >/dev/null || { echo "make-base-image: docker CLI not found" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "make-base-image: no Docker engine reachable (docker info failed)" >&2; exit 1; }

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/inferload-rootfs.XXXXXX")
cleanup() {
  for m in proc sys dev/pts dev; do umount "$rootfs/$m" 2>/dev/null || true; done
  # Never rm -rf through a mount that is still there (a bind-mounted /dev would lose the host's nodes).
  if grep -q " $rootfs/" /proc/mounts; then
    echo "make-base-image: mounts remain under $rootfs; not deleting it" >&2
  else
    rm -rf "$rootfs"
  fi
}
trap cleanup EXIT

echo "== debootstrap $SUITE ($MIRROR) → $rootfs"
debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-pip,ca-certificates \
  "$SUITE" "$rootfs" "$MIRROR"

cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES

# No service may start inside image builds (package postinst scripts call invoke-rc.d).
printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
chmod +x "$rootfs/usr/sbin/policy-rc.d"
# Keep apt lean in derived images.
cat > "$rootfs/etc/apt/apt.conf.d/90inferload" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
APT

if [ -n "${EXTRA_CA_DIR:-}" ]; then
  echo "== trusting extra CAs from $EXTRA_CA_DIR"
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cp "$EXTRA_CA_DIR"/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null
fi

if [ -z "${SKIP_UPGRADE:-}" ]; then
  echo "== applying $SUITE-security / -updates"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  chroot "$rootfs" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade >/dev/null'
fi

echo "== trimming"
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
       "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log "$rootfs"/tmp/* \
       "$rootfs"/etc/resolv.conf "$rootfs"/etc/hostname
: > "$rootfs/etc/machine-id"

echo "== docker import → $TAG"
tar --numeric-owner -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  --message "inferload base: Debian $SUITE minbase + python3, venv, pip" \
  - "$TAG"
docker run --rm "$TAG" python3 -c 'import sys, venv, ensurepip; print("python", sys.version.split()[0], "OK")'
echo "== built $TAG"
