"""Run every benchmark in turn, print their figures and write them to ``benchmarks/LATEST.md`` (``make bench``).

    python benchmarks/run_all.py [--out benchmarks/LATEST.md] [--quick]

``LATEST.md`` is the raw record of the last full run: date, machine, package versions and load average,
then each script's output as it printed it. ``RESULTS.md`` is the curated record (which runs were kept,
what changed between them, what the figures mean); copy figures from ``LATEST.md`` into it by hand. Timings
are medians of interleaved repeats; the machine may be shared, so compare ratios measured in the same
run, never across runs. ``--quick`` passes small repeat counts to every script (a smoke run, not figures).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

SCRIPTS = ("bench_cells.py", "bench_data.py", "bench_train.py", "bench_mlp.py", "bench_epoch.py", "bench_sweep.py",
           "bench_flax.py")
QUICK = {"bench_cells.py": ["--reps", "2"], "bench_data.py": ["--repeats", "1", "--batches", "2"],
         "bench_train.py": ["--reps", "1", "--steps", "2", "--models", "gru,mlp"],
         "bench_mlp.py": ["--reps", "1", "--steps", "2"],
         "bench_epoch.py": ["--reps", "1", "--models", "mlp"],
         "bench_sweep.py": ["--rounds", "1", "--steps", "1", "--ks", "4"],
         "bench_flax.py": ["--reps", "1", "--steps", "2", "--cells", "gru"]}
PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "torch", "keras", "tensorflow-cpu")


def versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="default benchmarks/LATEST.md (benchmarks/LATEST-quick.md with --quick)")
    p.add_argument("--quick", action="store_true", help="tiny repeat counts: check that every script runs")
    args = p.parse_args(argv)
    here, status = Path(__file__).parent, 0
    args.out = args.out or str(here / ("LATEST-quick.md" if args.quick else "LATEST.md"))
    header = (f"# Benchmark run {datetime.datetime.now().isoformat(timespec='minutes')}"
              + (" (--quick: not figures)" if args.quick else "")
              + f"\n\n{platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
              f"{versions()}; load average before: {os.getloadavg()[0]:.2f}\n")
    print(header, flush=True)
    parts = [header]
    for script in SCRIPTS:
        print(f"\n## {script}", flush=True)
        cmd = [sys.executable, str(here / script), *(QUICK.get(script, []) if args.quick else [])]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        lines = []
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
        status |= proc.wait()
        parts.append(f"\n## {script} (exit {proc.returncode})\n\n```\n{''.join(lines)}```\n")
    parts.append(f"\nload average after: {os.getloadavg()[0]:.2f}\n")
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text("".join(parts))
    os.replace(tmp, args.out)
    print(f"\nwrote {args.out}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
