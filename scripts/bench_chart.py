#!/usr/bin/env python3
"""Draw observations per second of every converge-bench run as an SVG chart.

Reads Google Benchmark JSON files (--benchmark_out_format=json), takes the
items_per_second of each benchmark, and writes a horizontal bar chart on a
logarithmic axis. The Go engine's figures on the same workload are drawn as
grey reference bars, and a red mark shows the target of a benchmark that has
one. Uses the Python standard library only.

Usage: scripts/bench_chart.py RESULT.json... [--output docs/benchmarks.svg]
"""

import argparse
import html
import json
import math
import re
import sys

# Go engine figures measured on W1 with Go 1.19 on the same kind of machine
# (2 cores, Debian 12), in observations per second.
GO_REFERENCE = [
    ("Go engine: W1, prepared keys", 5.9e6),
    ("Go engine: W1-large, prepared keys", 3.3e6),
    ("Go engine: W1, fresh keys", 0.30e6),
]

# Targets for converge on the same machine, in observations per second.
TARGETS = {
    "BM_EngineW1PreparedKeys/large:0": 60e6,
    "BM_EngineW1PreparedBatch/large:0": 60e6,
    "BM_EngineW1PreparedHandles/large:0": 60e6,
    "BM_EngineW1PreparedKeys/large:1": 30e6,
    "BM_EngineW1PreparedBatch/large:1": 30e6,
    "BM_EngineW1PreparedHandles/large:1": 30e6,
    "BM_EngineW1StringKeys/large:0": 20e6,
    "BM_EngineW1FreshKeys/large:0": 20e6,
    "BM_EngineW1FreshKeysBatch/large:0": 20e6,
}

ENGINE_LABELS = {
    "BM_EngineW1PreparedKeys": "prepared keys, Ingest() each",
    "BM_EngineW1PreparedBatch": "prepared keys, IngestBatch()",
    "BM_EngineW1PreparedHandles": "prepared handles, IngestBatch()",
    "BM_EngineW1StringKeys": "string keys, SeriesEncoder",
    "BM_EngineW1FreshKeys": "string keys, SeriesKey::FromViews",
    "BM_EngineW1FreshKeysBatch": "string keys, FromViews, IngestBatch()",
}

COLORS = {
    "engine": "#1f77b4",
    "pipeline": "#2ca02c",
    "codec": "#9467bd",
    "reference": "#a0a0a0",
}


def rank(label):
    """Returns the position of an engine label's variant in ENGINE_LABELS."""
    for index, text in enumerate(ENGINE_LABELS.values()):
        if label.endswith(": " + text):
            return index
    return len(ENGINE_LABELS)


def describe(name):
    """Returns (label, group) for a benchmark run name."""
    base = name.split("/iterations:")[0].replace("/real_time", "")
    match = re.match(r"(BM_EngineW1\w+)/large:(\d)", base)
    if match:
        workload = "W1-large" if match.group(2) == "1" else "W1"
        label = ENGINE_LABELS.get(match.group(1), match.group(1))
        return f"Engine {workload}: {label}", "engine"
    match = re.match(
        r"BM_PipelineW1/shards:(\d+)/fetchers:(\d+)/fresh_keys:(\d)", base)
    if match:
        keys = "fresh keys" if match.group(3) == "1" else "copied keys"
        return (f"Pipeline W1: {match.group(1)} shard(s) x "
                f"{match.group(2)} fetcher(s), {keys}"), "pipeline"
    if base.startswith("BM_ParseRecordedFetch"):
        return "Parse recorded fetch (observations)", "codec"
    if base.startswith("BM_ParseCloudflareResponse"):
        return "Parse Cloudflare response (observations)", "codec"
    if base.startswith("BM_EncodeRemoteWrite"):
        return "Remote-write encode + snappy (samples)", "codec"
    return base, "engine"


def load_runs(paths):
    """Returns [(label, group, items_per_second, target)] in chart order.

    A benchmark run with repetitions is drawn at its median.
    """
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
        benchmarks = document.get("benchmarks", [])
        with_median = {b.get("run_name") for b in benchmarks
                       if b.get("aggregate_name") == "median"}
        for benchmark in benchmarks:
            rate = benchmark.get("items_per_second")
            if not rate or benchmark.get("error_occurred"):
                continue
            if benchmark.get("run_type") == "aggregate":
                if benchmark.get("aggregate_name") != "median":
                    continue
            elif benchmark.get("run_name") in with_median:
                continue  # one repetition of a run drawn at its median
            name = benchmark.get("run_name", benchmark["name"])
            label, group = describe(name)
            base = name.split("/iterations:")[0]
            runs.append((label, group, rate, TARGETS.get(base)))
            # The pipeline's shard stage alone: observations divided by the
            # busiest shard thread's CPU time.
            bound = benchmark.get("shard_bound_obs_per_second")
            if group == "pipeline" and bound:
                runs.append((f"{label}, shard CPU bound", group, bound, None))

    # Engine runs first, W1 before W1-large, variants in ENGINE_LABELS order,
    # pipeline runs by label.
    order = {"engine": 0, "pipeline": 1, "codec": 2}
    runs.sort(key=lambda run: (order[run[1]], "W1-large" in run[0],
                               rank(run[0]), run[0]))
    return runs


def format_rate(rate):
    return f"{rate / 1e6:.2f} M/s" if rate < 10e6 else f"{rate / 1e6:.1f} M/s"


def render(runs, title):
    """Returns the SVG text for `runs` plus the Go reference bars."""
    rows = runs + [(label, "reference", rate, None)
                   for label, rate in GO_REFERENCE]
    # About 6.5 pixels per character of the 12-pixel label font.
    label_width = max(330, 16 + int(6.5 * max(len(row[0]) for row in rows)))
    bar_width, row_height = 520, 22
    top, left = 60, 10
    height = top + row_height * len(rows) + 50
    width = left + label_width + bar_width + 110
    low, high = 1e5, 1e8  # axis range, observations per second

    def x_of(rate):
        fraction = (math.log10(rate) - math.log10(low)) / (
            math.log10(high) - math.log10(low))
        return left + label_width + max(0.0, min(1.0, fraction)) * bar_width

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="15" font-weight="bold">'
        f'{html.escape(title)}</text>',
        f'<text x="{left}" y="42" fill="#555">Observations per second, '
        'logarithmic axis. Grey: the Go engine. Red mark: target.</text>',
    ]

    # Grid lines at each power of ten.
    for exponent in range(5, 9):
        x = x_of(10 ** exponent)
        label = f"{10 ** exponent / 1e6:g} M/s"
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" '
                   f'y2="{top + row_height * len(rows)}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{top + row_height * len(rows) + 16}"'
                   f' text-anchor="middle" fill="#555">{label}</text>')

    for index, (label, group, rate, target) in enumerate(rows):
        y = top + index * row_height
        x0 = x_of(low)
        x1 = x_of(rate)
        out.append(f'<text x="{left + label_width - 8}" y="{y + 15}" '
                   f'text-anchor="end">{html.escape(label)}</text>')
        out.append(f'<rect x="{x0:.1f}" y="{y + 3}" width="{x1 - x0:.1f}" '
                   f'height="{row_height - 6}" fill="{COLORS[group]}"/>')
        text_x = x1
        if target:
            xt = x_of(target)
            text_x = max(x1, xt)
            out.append(f'<line x1="{xt:.1f}" y1="{y + 1}" x2="{xt:.1f}" '
                       f'y2="{y + row_height - 1}" stroke="#d62728" '
                       'stroke-width="3"/>')
        out.append(f'<text x="{text_x + 6:.1f}" y="{y + 15}">'
                   f'{format_rate(rate)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+",
                        help="Google Benchmark JSON output files")
    parser.add_argument("--output", default="docs/benchmarks.svg",
                        help="SVG file to write (default: %(default)s)")
    parser.add_argument("--title", default="converge-bench on workload W1",
                        help="chart title")
    args = parser.parse_args()

    runs = load_runs(args.results)
    if not runs:
        sys.exit("no benchmark with items_per_second found in the input files")
    with open(args.output, "w", encoding="utf-8") as file:
        file.write(render(runs, args.title))
    print(f"wrote {args.output} ({len(runs)} benchmarks)")


if __name__ == "__main__":
    main()
