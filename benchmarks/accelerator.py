"""Benchmark jena_rnn on this machine's accelerator (issue 17) and write the figures to benchmarks/ACCELERATOR.md.

    python benchmarks/accelerator.py --out benchmarks/ACCELERATOR.md     (one GPU: within 8 minutes)
    python benchmarks/accelerator.py --quick --out /tmp/ACCELERATOR.md   (the CPU smoke run: under 2 minutes)

docs/accelerators.md says how to run it on a GPU node. Sections, each written to ``--out`` as it ends (so
a run stopped early keeps what it measured):
1. Cells against float64: every cell's ``unroll`` in float32, at the default and at "highest" matmul
   precision, against the same unroll in float64 on the same device (``jax.enable_x64``); max |error| over
   the outputs and the final state. On CUDA also the LSTM through cuDNN (``nn.cudnn``).
2. Training step per policy: ms per training step (``bench_train.ours``, the training path) of every
   lecture model under this backend's ``ScanPolicy``, then with one choice flipped at a time: the input
   projection (hoisted / in-loop), remat, and float32 matmul precision "highest". Then a forward+backward
   (``bench_cells.make_grad_fn``) of the LSTM through its scan and through cuDNN, beside the GRU's scan.
3. Peers: Flax ``nn.RNN`` and PyTorch ``nn.GRU``/``nn.LSTM`` (cuDNN on a GPU), timed in the same interleaved
   rounds as section 2; a peer that is not installed is skipped with a note.
4. Sweeps: K vmapped GRU(32) members (``bench_sweep.vmapped``) against K sequential steps of one model
   (K x its measured step).
5. One whole lecture GRU epoch (``bench_epoch.ours``): 500 training steps and the validation pass.
Every timing is a median of interleaved repeats (A B A B ...: a neighbour's load hits every side alike).
``--quick`` runs the same code with tiny counts, the models gru, lstm and mlp, and K = 1, 2: not figures.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import bench_cells  # noqa: E402
import bench_epoch  # noqa: E402
import bench_sweep  # noqa: E402
import bench_train  # noqa: E402
from run_all import versions  # noqa: E402

from jena_rnn import backend, data  # noqa: E402
from jena_rnn.atomic import write_atomic  # noqa: E402
from jena_rnn.config import LECTURE_MODELS, Config, DataConfig, TrainConfig, lecture_config  # noqa: E402
from jena_rnn.forecast import train  # noqa: E402
from jena_rnn.forecast.reproduce import machine  # noqa: E402
from jena_rnn.nn import cells, rnn  # noqa: E402

MODELS = tuple(name for name, (model, *_) in LECTURE_MODELS.items() if model.kind != "naive")  # every trained one
QUICK_MODELS = ("gru", "lstm", "mlp")
PEER_MODELS = ("gru", "lstm")  # the peers run these exactly (bench_train.approximate: the others only roughly)
CELLS = [("simple_rnn", False, False), ("lstm", False, False), ("gru", True, False), ("gru", False, False)]
CELL_IDS = {("gru", True): "gru reset-after", ("gru", False): "gru reset-before"}


class Report:
    """Markdown lines, printed as they come and rewritten to ``path`` at the end of each section."""

    def __init__(self, path: str):
        self.path, self.lines, self.t0 = path, [], time.perf_counter()

    def add(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
            self.lines.append(line)

    def section(self, title: str) -> None:
        self.add("", f"## {title}", "")
        self.start = time.perf_counter()

    def flush(self) -> None:
        self.add("", f"_section: {time.perf_counter() - self.start:.0f} s; run so far: "
                 f"{time.perf_counter() - self.t0:.0f} s_")
        write_atomic(self.path, "\n".join(self.lines) + "\n")


def failed(e: Exception) -> str:
    """One table cell for a variant that raised (a one-shot device run keeps going)."""
    return f"failed: {type(e).__name__}: {' '.join(str(e).split())[:160]}"


def precision(name: str | None):
    """``jax.default_matmul_precision(name)`` as a context, or nothing for None (the backend's default)."""
    return jax.default_matmul_precision(name) if name else contextlib.nullcontext()


def cell_errors(rep: Report, b: int, t: int, f: int, h: int) -> None:
    """Section 1: float32 (default / highest precision) against float64, on this device."""
    xs = jax.random.normal(jax.random.key(0), (b, t, f))
    cases = CELLS + ([("lstm", False, True)] if backend.platform() == "cuda" else [])
    rep.add(f"B={b} T={t} F={f} H={h}; max |float32 - float64| over ys and the final state; inputs N(0, 1), "
            "Keras's init; float64: the scan (cuDNN takes float32 only)", "",
            "| cell | default precision | highest precision |", "|---|---|---|")
    for cell, reset_after, cudnn in cases:
        p = cells.init_cell(cell, jax.random.key(1), f, h, reset_after=reset_after)
        policy = backend.scan_policy(cudnn_lstm=cudnn)

        def run(p, xs):
            return rnn.unroll(cell, p, xs, reset_after=reset_after, policy=policy)

        label = CELL_IDS.get((cell, reset_after), cell) + (" (cuDNN)" if cudnn else "")
        try:
            with jax.enable_x64(True):
                want = jax.tree.map(np.asarray, jax.jit(run)(*jax.tree.map(lambda a: jnp.asarray(a, jnp.float64),
                                                                           (p, xs))))
            errs = []
            for prec in (None, "highest"):
                with precision(prec):
                    got = jax.jit(run)(p, xs)  # a fresh jit per precision (the context is traced in)
                errs.append(max(float(np.max(np.abs(np.asarray(g, np.float64) - w)))
                                for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want))))
            rep.add(f"| {label} | {errs[0]:.2e} | {errs[1]:.2e} |")
        except Exception as e:  # noqa: BLE001 (reported in the table)
            rep.add(f"| {label} | {failed(e)} | |")
    if backend.platform() != "cuda":
        rep.add("", f"lstm (cuDNN): skipped, cuDNN's kernel needs CUDA (this platform: {backend.platform()})")


def variants(name: str) -> dict[str, dict]:
    """Section 2's columns for lecture model ``name``: the policy, then one choice flipped at a time."""
    here = backend.scan_policy()
    out = {"policy": {}}
    if lecture_config(name).model.kind != "mlp":  # the MLP has no scan
        out["hoisted" if not here.hoist_input else "in-loop"] = {"hoist": not here.hoist_input}
        out["remat on" if not here.remat else "remat off"] = {"remat": not here.remat}
    out["highest"] = {"precision": "highest"}
    return out


def ours(name: str, steps: int, ds, *, remat=None, hoist=None, precision_name=None):
    with precision(precision_name):  # compiled inside: the precision is part of the program
        return bench_train.ours(name, steps, ds, remat, hoist=hoist)[0]


def peers(model, steps: int, xs, y, notes: list[str], wanted: set[str]) -> dict:
    """The Flax and PyTorch runners for ``model`` that can be built here; a note for each that cannot."""
    out = {}
    notes += [f"{peer}: skipped (not in --peers)" for peer in sorted({"flax", "pytorch"} - wanted)]
    if "flax" in wanted:
        try:
            out["flax nn.RNN"] = bench_train.flax_peer(model, steps, xs, y)
        except ImportError as e:
            notes.append(f"flax: skipped ({e})")
    if "pytorch" in wanted:
        try:
            import torch
            device = "cuda" if torch.cuda.is_available() else "cpu"
            out[f"pytorch ({device})"] = bench_train.torch_peer(model, steps, xs, y, device=device)
        except ImportError as e:
            notes.append(f"pytorch: skipped ({e})")
    return out


def policies(rep: Report, models, run_models, ds, steps: int, reps: int, wanted: set[str]) -> dict:
    """Section 2 (and the timings section 3 reports): one interleaved group per model."""
    pol = backend.scan_policy()
    rep.add(f"ms per training step, median of {reps} interleaved repeats of {steps} steps; batch 128, T=240, "
            f"F=14. This backend's policy: hoist_input={pol.hoist_input}, remat={pol.remat}, "
            f"cudnn_lstm={pol.cudnn_lstm}; each other column flips one choice. On CUDA the lstm row runs "
            "cuDNN in every column (the training path takes cudnn_lstm from the policy), so its scan is "
            "timed in the forward+backward table below.", "",
            "| model | policy | projection flipped | remat flipped | highest precision |", "|---|---|---|---|---|")
    xs, y = data.windows(ds.series, jnp.arange(10_000, 10_000 + 128), lookback=1440, step=6, delay=144, target_col=1)
    peer_times, notes = {}, []
    for name in models:
        if name not in run_models:
            rep.add(f"| {name} | not run (--quick runs {', '.join(run_models)}) | | | |")
            continue
        cols = variants(name)
        try:
            runners = {col: ours(name, steps, ds, remat=v.get("remat"), hoist=v.get("hoist"),
                                 precision_name=v.get("precision")) for col, v in cols.items()}
            if name in PEER_MODELS:
                runners |= peers(lecture_config(name).model, steps, xs, y, notes, wanted)
            med = {k: statistics.median(v) for k, v in bench_train.interleave(runners, reps, steps).items()}
        except Exception as e:  # noqa: BLE001 (reported in the table)
            rep.add(f"| {name} | {failed(e)} | | | |")
            continue
        cells_ = [f"{bench_train._ms(med[c])} ({c})" for c in cols if c != "policy"]
        if len(cells_) == 1:  # the MLP: no projection or remat to flip
            cells_ = ["n/a (no scan)", "n/a (no scan)", *cells_]
        rep.add(f"| {name} | {bench_train._ms(med['policy'])} | " + " | ".join(cells_) + " |")
        if name in PEER_MODELS:
            peer_times[name] = med
    return {"times": peer_times, "notes": notes}


def kernels(rep: Report, reps: int, b: int, t: int) -> None:
    """Section 2's forward+backward table: the LSTM's scan and cuDNN, the GRU's scan (bench_cells)."""
    k_x, k_y = jax.random.split(jax.random.key(0))
    xs, y = jax.random.normal(k_x, (b, t, 14)), jax.random.normal(k_y, (b,))
    fns = {"lstm scan": ("lstm", False), "gru scan": ("gru", False)}
    if backend.platform() == "cuda":
        fns["lstm cuDNN"] = ("lstm", True)
    runners = {}
    for label, (cell, cudnn) in fns.items():
        fn, p = bench_cells.make_grad_fn(cell, None, None, cudnn_lstm=cudnn), cells.init_cell(cell, jax.random.key(1), 14, 32)
        try:
            jax.block_until_ready(fn(p, xs, y))  # compile here, so that one failing variant drops alone
            runners[label] = lambda fn=fn, p=p: jax.block_until_ready(fn(p, xs, y))
        except Exception as e:  # noqa: BLE001 (reported below the table)
            rep.add(f"{label}: {failed(e)}")
    med = {k: statistics.median(v) for k, v in bench_train.interleave(runners, reps, 1).items()}
    rep.add("", f"Forward+backward of one layer (B={b}, T={t}, F=14, H=32; policy otherwise this backend's), "
            f"ms, median of {reps}:", "", "| variant | ms | / lstm scan |", "|---|---|---|")
    for k, v in med.items():
        rep.add(f"| {k} | {bench_train._ms(v)} | {v / med['lstm scan']:.2f}x |")
    if "lstm cuDNN" not in med:
        rep.add("", f"lstm cuDNN: skipped, cuDNN's kernel needs CUDA (this platform: {backend.platform()})")


def peer_table(rep: Report, found: dict) -> None:
    """Section 3, from the rounds of section 2."""
    rep.add("ms per training step from section 2's interleaved rounds; ratio = peer / ours (above 1: ours "
            "is faster). Flax: nn.RNN over GRUCell / OptimizedLSTMCell, optax RMSprop, one jitted call per "
            "step; PyTorch: eager, one call per step.", "", "| model | ours (policy) | peer | peer ms | peer / ours |",
            "|---|---|---|---|---|")
    for name, med in found["times"].items():
        for peer in (k for k in med if k.startswith(("flax", "pytorch"))):
            rep.add(f"| {name} | {bench_train._ms(med['policy'])} | {peer} | {bench_train._ms(med[peer])} | "
                    f"{med[peer] / med['policy']:.2f}x |")
    rep.add("", *(f"- {n}" for n in dict.fromkeys(found["notes"])))


def sweeps(rep: Report, ks, steps: int, reps: int) -> None:
    """Section 4: K vmapped members against K x one model's measured step."""
    ds = data.load_dataset(bench_sweep.DATA)
    cfg = bench_sweep.config(steps)
    epoch = train.make_train_epoch(cfg, ds.train, ds.target_col)
    state = train.init_state(cfg, jax.random.PRNGKey(0), ds.series.shape[1])
    runners = {"single": lambda: epoch(state, ds.series)[1]["loss"].block_until_ready()}
    runners |= {f"vmap {k}": bench_sweep.vmapped(cfg, k, ds) for k in ks}
    med = {k: statistics.median(v) for k, v in bench_train.interleave(runners, reps, steps).items()}
    one = med["single"]
    rep.add(f"GRU(32), batch 128, T=240; ms per training step of all K members (one vmap, "
            f"`sweep.make_sweep_epoch`), median of {reps}; sequential = K x one model's step "
            f"({bench_train._ms(one)} ms, measured in the same rounds).", "",
            "| K | vmapped ms | ms per member | sequential ms | sequential / vmapped |", "|---|---|---|---|---|")
    for k in ks:
        v = med[f"vmap {k}"]
        rep.add(f"| {k} | {bench_train._ms(v)} | {bench_train._ms(v / k)} | {bench_train._ms(k * one)} | "
                f"{k * one / v:.2f}x |")


def epoch(rep: Report, ds, quick: bool, reps: int) -> None:
    """Section 5: one lecture GRU epoch (500 steps of 128, then every validation window)."""
    base = Config(data=bench_sweep.DATA, train=TrainConfig(steps_per_epoch=2)) if quick else None
    config = lecture_config("gru", base)
    run = bench_epoch.ours("gru", ds, None, config=config)
    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    rows, valid = train.split_rows(config, ds.val)
    rep.add(f"lecture gru: {config.train.steps_per_epoch} training steps of {config.data.batch_size}, then "
            f"{int(np.sum(valid))} validation windows; one device", "",
            "| first epoch (compiles), s | epoch, s (median of %d) |" % reps, "|---|---|",
            f"| {first:.1f} | {statistics.median(times):.2f} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="default benchmarks/ACCELERATOR.md (ACCELERATOR-quick.md with --quick)")
    p.add_argument("--quick", action="store_true", help="tiny counts on any backend: a smoke run, not figures")
    p.add_argument("--models", help=f"comma-separated, from {','.join(MODELS)} (default: all; --quick: "
                   f"{','.join(QUICK_MODELS)})")
    p.add_argument("--reps", type=int, help="interleaved repeats (default 5; --quick 1)")
    p.add_argument("--steps", type=int, help="training steps per timed call (default 10; --quick 1)")
    p.add_argument("--ks", help="sweep sizes (default 1,8,32,128; --quick 1,2)")
    p.add_argument("--peers", default="flax,pytorch", help="which peers to run (default flax,pytorch; none: neither)")
    args = p.parse_args(argv)
    q = args.quick
    out = args.out or str(Path(__file__).parent / ("ACCELERATOR-quick.md" if q else "ACCELERATOR.md"))
    reps, steps = args.reps or (1 if q else 5), args.steps or (1 if q else 10)
    ks = [int(k) for k in (args.ks or ("1,2" if q else "1,8,32,128")).split(",")]
    run_models = tuple(args.models.split(",")) if args.models else (QUICK_MODELS if q else MODELS)
    rep = Report(out)
    rep.add(f"# Accelerator benchmark {datetime.datetime.now().isoformat(timespec='minutes')}"
            + (" (--quick: a smoke run, not figures)" if q else ""), "",
            f"{machine()}; platform {backend.platform()}, {jax.device_count()} x {jax.devices()[0].device_kind}; "
            f"{platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}; {versions()}; "
            f"load average before: {os.getloadavg()[0]:.2f}. Command: accelerator.py {' '.join(argv or sys.argv[1:])}")
    ds = data.load_dataset(bench_sweep.DATA if q else DataConfig())
    rep.section("1. Cells against float64")
    cell_errors(rep, *((4, 16) if q else (128, 240)), 14, 32)
    rep.flush()
    rep.section("2. Training step per policy")
    found = policies(rep, MODELS, run_models, ds, steps, reps, set(args.peers.split(",")))
    kernels(rep, reps, *((8, 24) if q else (128, 240)))
    rep.flush()
    rep.section("3. Peers")
    peer_table(rep, found)
    rep.flush()
    rep.section("4. Sweeps")
    sweeps(rep, ks, steps, reps)
    rep.flush()
    rep.section("5. One lecture GRU epoch")
    epoch(rep, ds, q, 1 if q else 2)
    rep.flush()
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
