#!/usr/bin/env bash
# Installs what is missing, builds converge-exporter and runs it on the
# embedded default: one simulated hour of a Cloudflare-like workload, written
# as JSON lines to standard output. Extra arguments go to the exporter, e.g.
#   scripts/run.sh --sim-zones=1000 --sink-file=samples.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh >&2

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
cmake --build build -j "$(nproc)" --target converge-exporter >&2

exec ./build/converge-exporter --source=sim --sink=file --sink-file=- "$@"
