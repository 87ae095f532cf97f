#!/bin/sh
# prepare-models.sh SRC DEST — fill a writable model repository DEST for a server that mounts it read-only.
#
# Copies SRC (config.toml files, labels, any user-supplied ONNX files) into DEST, then generates the missing
# built-in model files with their deterministic builders (`python -m server.build`; seeded weights, the same
# bytes every time, nothing is downloaded). Used by the compose `models` init service (SRC = ./models mounted
# read-only, DEST = the `models` volume) and by the Kubernetes initContainer (SRC = the configs baked into the
# image, DEST = an emptyDir). Idempotent: files already built in DEST are kept.
# INFERLOAD_MODEL_NAMES (comma-separated) limits the build to those models (their shared files included).
set -eu
SRC=${1:-/app/models}
DEST=${2:-/models}
[ -d "$SRC" ] || { echo "prepare-models: source $SRC is not a directory" >&2; exit 2; }
mkdir -p "$DEST"
cp -R "$SRC"/. "$DEST"/
if [ -n "${INFERLOAD_MODEL_NAMES:-}" ]; then
  # shellcheck disable=SC2086  # word splitting intended: one argument per name
  set -- $(echo "$INFERLOAD_MODEL_NAMES" | tr ',' ' ')
  exec python -m server.build --models "$DEST" "$@"
fi
exec python -m server.build --models "$DEST"
