"""Run every benchmark in turn and print their figures (``make bench``).

Each script prints its own table with the machine named; copy the figures you want to keep into
``benchmarks/RESULTS.md`` with the date and the machine's load. Timings are medians of interleaved
repeats; the machine is shared, so compare ratios measured in the same run, never across runs.
"""
import subprocess
import sys
from pathlib import Path

SCRIPTS = ("bench_cells.py", "bench_data.py", "bench_train.py", "bench_sweep.py")


def main() -> int:
    here = Path(__file__).parent
    status = 0
    for script in SCRIPTS:
        print(f"\n### {script}", flush=True)
        status |= subprocess.call([sys.executable, str(here / script)])
    return status


if __name__ == "__main__":
    sys.exit(main())
