#!/usr/bin/env bash
# Installs what is missing, builds converge and runs the whole test suite:
# the normal build (unit, pipeline and end-to-end tests, the latter with a
# real VictoriaMetrics on 127.0.0.1) and a ThreadSanitizer build of the
# pipeline tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

jobs=$(nproc)

echo "== build (RelWithDebInfo) =="
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$jobs"

echo "== build (ThreadSanitizer, pipeline tests) =="
cmake -S . -B build-tsan -G Ninja -DCONVERGE_TSAN=ON
cmake --build build-tsan -j "$jobs" --target pipeline_tests

echo "== tests (ThreadSanitizer) =="
ctest --test-dir build-tsan --output-on-failure

echo "== tests =="
ctest --test-dir build --output-on-failure
