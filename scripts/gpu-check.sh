#!/usr/bin/env bash
# ONNX Runtime's CUDA provider end to end, for whoever has an NVIDIA GPU (CI machines have none; docs/providers.md).
#
#   scripts/gpu-check.sh                 # CUDA; PROVIDER=tensorrt scripts/gpu-check.sh for TensorRT (needs its libs)
#
# 1. builds .venv-gpu from requirements/gpu.txt (dev.txt with onnxruntime swapped for onnxruntime-gpu[cuda,cudnn],
#    hashes checked; CUDA and cuDNN come as NVIDIA wheels, the machine needs only the driver);
# 2. `inferload bench --provider cpu,$PROVIDER` on mobilenet_v2 at batch 1 and 8 (both rows, the provider that ran);
# 3. `inferload serve` with [instances] provider = $PROVIDER: /config must say it runs $PROVIDER;
# 4. a short `inferload peak` against that server (p99 <= $SLO_MS ms).
# Results land in results/gpu-check-<time>/. Exits non-zero at the first step that fails, saying which.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
PROVIDER=${PROVIDER:-cuda}
PORT=${PORT:-8123}
SLO_MS=${SLO_MS:-50}
DURATION=${DURATION:-5}
# VENV/LOCK: another environment, e.g. a rehearsal on a CPU box:
#   VENV=.venv-openvino LOCK=requirements/openvino.txt PROVIDER=openvino DURATION=1 scripts/gpu-check.sh
VENV=${VENV:-.venv-gpu}
LOCK=${LOCK:-requirements/gpu.txt}
OUT=results/gpu-check-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

fail() { echo "gpu-check FAILED: $*" >&2; exit 1; }

command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L || echo "(nvidia-smi not found: is the NVIDIA driver installed?)"

if [ ! -f "$VENV/.installed-stamp" ] || [ "$LOCK" -nt "$VENV/.installed-stamp" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --require-hashes -r "$LOCK" || fail "installing $LOCK"
  "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e . || fail "installing the project"
  touch "$VENV/.installed-stamp"
fi
IL="$VENV/bin/inferload"

echo "== providers this ONNX Runtime has"
"$VENV/bin/python" -c "import onnxruntime as o; o.preload_dlls() if hasattr(o, 'preload_dlls') else None; print(o.__version__, o.get_available_providers())"

echo "== build mobilenet_v2"
"$IL" models build --models models mobilenet_v2 || fail "models build"

echo "== bench: cpu vs $PROVIDER, batch 1 and 8"
COLUMNS=160 "$IL" bench --model mobilenet_v2 --models models --provider "cpu,$PROVIDER" --batch 1,8 \
  --duration "$DURATION" --warmup 1 --out "$OUT/bench.json" || fail "bench --provider cpu,$PROVIDER (see the message above)"
"$VENV/bin/python" - "$OUT/bench.json" "$PROVIDER" <<'EOF' || fail "bench did not run on $PROVIDER"
import json, sys
rows = json.load(open(sys.argv[1]))["results"]
ran = sorted({r["provider"] for r in rows})
print("bench rows ran on:", ran)
sys.exit(0 if sys.argv[2] in ran else 1)
EOF

echo "== serve with provider = $PROVIDER on 127.0.0.1:$PORT"
"$IL" serve --models models --model mobilenet_v2 --port "$PORT" --override "instances.provider=$PROVIDER" \
  >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$OUT/server.log" >&2; fail "the server did not start (log above)"; }
  sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/v2/models/mobilenet_v2/config" >"$OUT/config.json" || fail "the server is not ready"
"$VENV/bin/python" - "$OUT/config.json" "$PROVIDER" <<'EOF' || fail "the server does not run $PROVIDER"
import json, sys
params = json.load(open(sys.argv[1]))["parameters"]
print("server runs:", params["execution_providers"]["string_value"])
sys.exit(0 if params["execution_provider"]["string_value"] == sys.argv[2] else 1)
EOF

echo "== peak under p99 <= $SLO_MS ms (short)"
"$IL" peak --target "http://127.0.0.1:$PORT" --model mobilenet_v2 --slo-ms "$SLO_MS" --duration "$DURATION" --warmup 1 \
  --max-probes 6 --confirm 1 --allow-invalid --out "$OUT/peak" || fail "peak"

echo "== gpu-check passed: $OUT"
