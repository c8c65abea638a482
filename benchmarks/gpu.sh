#!/usr/bin/env bash
# The prepared GPU check (what it measures: benchmarks/gpu_check.py). On a lent GPU:
#   benchmarks/gpu.sh --output "$OUT/gpu_check.json"
# To prove it works on a CPU (minutes, numbers meaningless):
#   benchmarks/gpu.sh --device cpu --quick --output /tmp/gpu_check.json
set -euo pipefail
cd "$(dirname "$0")/.."
exec python benchmarks/gpu_check.py "$@"
