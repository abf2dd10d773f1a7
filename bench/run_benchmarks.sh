#!/usr/bin/env bash
# Runs every converge-bench benchmark, each in a process of its own, writes
# one Google Benchmark JSON file per run into OUT_DIR, and draws the chart.
#
# A process of its own gives each run a clean peak-memory baseline: memory
# that an earlier benchmark freed and the allocator kept cached would
# otherwise be reused without growing VmHWM.
#
# Usage: bench/run_benchmarks.sh [BUILD_DIR] [OUT_DIR]
#   BUILD_DIR  a Release build (default: build-bench)
#   OUT_DIR    where the JSON files go (default: bench/results)
# Each benchmark runs REPETITIONS times (default 3). The JSON files keep every
# repetition and their mean, median and standard deviation, and the chart
# shows the median. The load average is printed before and after each run.
# Other processes on the machine change the figures, so take them on an idle
# machine.

set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-${root}/build-bench}"
out="${2:-${root}/bench/results}"
bench="${build}/bench/converge-bench"
repetitions="${REPETITIONS:-3}"

if [[ ! -x "${bench}" ]]; then
  echo "converge-bench not found at ${bench}; build it first:" >&2
  echo "  cmake -S ${root} -B ${build} -G Ninja -DCMAKE_BUILD_TYPE=Release" >&2
  echo "  ninja -C ${build} converge-bench" >&2
  exit 1
fi
mkdir -p "${out}"

# One Google Benchmark filter per process; the file name is the filter with
# characters other than letters, digits, '_' and '-' replaced by '_'.
filters=(
  'BM_EngineW1PreparedKeys/large:0/'
  'BM_EngineW1PreparedKeys/large:1/'
  'BM_EngineW1PreparedBatch/large:0/'
  'BM_EngineW1PreparedBatch/large:1/'
  'BM_EngineW1PreparedHandles/large:0/'
  'BM_EngineW1PreparedHandles/large:1/'
  'BM_EngineW1StringKeys/large:0/'
  'BM_EngineW1FreshKeys/large:0/'
  'BM_EngineW1FreshKeysBatch/large:0/'
  'BM_PipelineW1/'
  'BM_ParseRecordedFetch'
  'BM_ParseCloudflareResponse'
  'BM_EncodeRemoteWrite'
)

for filter in "${filters[@]}"; do
  name="$(printf '%s' "${filter}" | tr -c 'A-Za-z0-9_-' '_')"
  echo "== ${filter}  (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  "${bench}" --benchmark_filter="${filter}" \
    --benchmark_repetitions="${repetitions}" \
    --benchmark_out="${out}/${name}.json" --benchmark_out_format=json \
    --benchmark_counters_tabular=false
  echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
done

python3 "${root}/scripts/bench_chart.py" "${out}"/*.json \
  --output "${root}/docs/benchmarks.svg"
