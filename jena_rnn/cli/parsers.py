"""The argparse parsers of ``jena-rnn``'s subcommands and of the ``experiments/*.py`` scripts.

Every default a help text shows is read from where it lives: a config dataclass (``config.py``,
``imdb.IMDBConfig``) or the keyword default of the library function the flag feeds; none is written
here a second time. Flags of the forecaster default to None ("not given"): the chosen lecture preset
(``config.lecture_config``) supplies the value, so the help names the dataclass default it starts from.
"""
from __future__ import annotations

import argparse
import inspect
import re

from jena_rnn.cli import values as v
from jena_rnn.config import (ACTIVATIONS, CELLS, EVAL_MODES, LECTURE_MODELS, OPTIMIZERS, OTHER_SENTINEL_POLICIES,
                             OUTLIER_POLICIES, SENTINEL_POLICIES, DataConfig, LayerConfig, ModelConfig,
                             OptimConfig, TrainConfig)
from jena_rnn.forecast import reproduce, runs
from jena_rnn.imdb import IMDBConfig
from jena_rnn.sweep import grid, search

DESCRIPTION = "The jena-rnn command line: flags become a Config, then one library function runs."
EXPERIMENTS_OUT = "runs/experiments"  # parent of an experiments/<name>.py script's run directory


class UsageError(ValueError):
    """A flag argparse refused; ``main`` prints it as one ``PROG: error:`` line plus where to find help."""

    def __init__(self, message: str, prog: str):
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (plus where to find help), not the whole usage.

    Every word that starts with a minus and a digit is a value, not an option (no option here starts with
    a digit): argparse's own pattern knows only ``-1`` and ``-.5``, so ``--lr -1e-3`` or a sweep's
    ``--lr -1e-3,1e-3`` would get "expected one argument" instead of the range error.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str):
        raise UsageError(message, self.prog)


def shown(value) -> str:
    """A default as a help text shows it (None = off), with argparse's ``%`` escaped."""
    return ("off" if value is None else str(value)).replace("%", "%%")


def keyword_default(fn, name: str):
    """The default of keyword ``name`` of library function ``fn`` (its one home)."""
    return inspect.signature(fn).parameters[name].default


def add_data_args(p: argparse.ArgumentParser) -> None:
    """Add the data options shared by every command that reads data (defaults: ``DataConfig``)."""
    d = DataConfig()
    g = p.add_argument_group("data")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--data", type=v.path, metavar="FILE",
                     help="CSV (.csv, .csv.zip, .csv.gz); default: the synthetic Jena data")
    src.add_argument("--synthetic", action="store_true", help="use the embedded synthetic Jena default (the default)")
    g.add_argument("--lookback", type=v.positive_int, help=f"rows of history per window (default {d.lookback})")
    g.add_argument("--step", type=v.positive_int, help=f"keep one row in STEP inside a window (default {d.step})")
    g.add_argument("--delay", type=v.positive_int, help=f"forecast horizon in rows (default {d.delay})")
    g.add_argument("--batch-size", type=v.positive_int, help=f"samples per batch (default {d.batch_size})")
    g.add_argument("--target", metavar="COLUMN", help=f"column to forecast (default {shown(repr(d.target))})")
    g.add_argument("--time-column", metavar="COLUMN", type=v.nonempty,
                   help=f"timestamp column (default {shown(repr(d.time_column))}; 'none' for none)")
    g.add_argument("--time-format", metavar="FMT", type=v.nonempty,
                   help=f"strptime format of the timestamps (default {shown(d.time_format)})")
    g.add_argument("--splits", type=v.parse_splits, metavar="LO:HI,LO:HI,LO:HI",
                   help=f"train,val,test end-row ranges: rows or fractions (default {v.format_splits(d)})")
    g.add_argument("--eval-mode", choices=EVAL_MODES,
                   help=f"full: every window of a split once; lecture: the book's val_steps batches "
                   f"(default {d.eval_mode})")
    g.add_argument("--strict-targets", action="store_true", default=None,
                   help="keep targets inside each split (the lecture lets them reach DELAY rows past it)")
    g.add_argument("--columns", metavar="A,B,...", help="feature columns to use, in this order (comma-separated); "
                   "describing the file this way reads a Jena-like header as a generic CSV")
    g.add_argument("--sentinel-policy", choices=SENTINEL_POLICIES,
                   help="what to do with -9999 error values in the wind columns (default "
                   f"{d.sentinel_policy}; zero is the TensorFlow tutorial's)")
    g.add_argument("--sentinel-elsewhere", choices=OTHER_SENTINEL_POLICIES,
                   help=f"what to do with -9999 in any other column (default {d.other_sentinel_policy}; "
                   "error: refused, naming line and column)")
    g.add_argument("--outliers", choices=OUTLIER_POLICIES,
                   help="physically impossible values, or values more than 100 robust spreads from a column's "
                   f"median: error (refused, naming line, column and value) or keep (default {d.outlier_policy})")
    g.add_argument("--allow-overlap", action="store_true", default=None,
                   help="accept train/val/test ranges that overlap or are out of order (refused by default)")
    g.add_argument("--synthetic-rows", type=v.positive_int,
                   help=f"rows of the synthetic default (default {d.synthetic_rows})")


def add_distributed_args(p: argparse.ArgumentParser) -> None:
    """Add the multi-process options (``jax.distributed``) of ``train``, ``sweep`` and ``imdb``."""
    g = p.add_argument_group("multi-process (jax.distributed; docs/scaling.md)")
    g.add_argument("--distributed", action="store_true", help="call jax.distributed.initialize: the cluster "
                   "from SLURM/Open MPI/TPU, or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID, "
                   "or the three flags below (which imply --distributed)")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0's coordinator")
    g.add_argument("--num-processes", type=v.positive_int, help="processes in the job")
    g.add_argument("--process-id", type=int, help="this process's id, 0..N-1")


def add_train(sub) -> None:
    """The ``train`` subcommand: a lecture preset, then flag overrides (defaults: the config dataclasses)."""
    layer, model, optim, tr = LayerConfig(), ModelConfig(), OptimConfig(), TrainConfig()
    t = sub.add_parser("train", help="train a lecture model (checkpoints, history, plot in --out)")
    t.add_argument("--model", default="gru", choices=sorted(set(LECTURE_MODELS) - {"naive"}),
                   help="the lecture's experiment to start from (default %(default)s)")
    t.add_argument("--units", help="hidden units, one value or one per layer (e.g. 32,64; default: the model's)")
    t.add_argument("--dropout", help="input dropout rate(s), one mask per sequence (default: the model's)")
    t.add_argument("--recurrent-dropout",
                   help="recurrent dropout rate(s), one mask per sequence (default: the model's)")
    t.add_argument("--activation", help=f"candidate activation(s): {', '.join(ACTIVATIONS)} "
                   f"(default {layer.activation}, or the model's)")
    t.add_argument("--reset-after", action="store_true",
                   help="GRU: Keras-default/PyTorch form (reset after the matmul)")
    t.add_argument("--bidirectional", action="store_true", help="make every recurrent layer bidirectional")
    t.add_argument("--reverse", action="store_true", help="feed windows in reversed time order")
    t.add_argument("--mlp-units", type=v.positive_int, help=f"MLP hidden width (default {model.mlp_units})")
    t.add_argument("--hoist-input", choices=("on", "off"),
                   help="input projection before the scan (default: per backend)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default {optim.name}")
    t.add_argument("--lr", type=v.number(0, float("inf"), "a positive learning rate", lo_open=True),
                   help=f"learning rate (default {optim.learning_rate})")
    t.add_argument("--rho", type=v.number(0, 1, "an RMSprop decay in [0, 1)"),
                   help=f"RMSprop decay (default {optim.decay})")
    t.add_argument("--eps", type=v.number(0, float("inf"), "an epsilon >= 0"),
                   help=f"RMSprop epsilon, inside the square root as Keras (default {optim.eps})")
    t.add_argument("--epochs", type=v.positive_int, help="epochs (default: the lecture's for the model)")
    t.add_argument("--steps-per-epoch", type=v.positive_int, help=f"batches per epoch (default {tr.steps_per_epoch})")
    t.add_argument("--seed", type=v.seed, help=f"seed for init, batches and dropout (default {tr.seed})")
    t.add_argument("--patience", type=v.positive_int,
                   help=f"early stopping patience in epochs (default {shown(tr.patience)})")
    t.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE", help="any other config field")
    t.add_argument("--out", required=True, type=v.path, help="run directory (checkpoints, history, loss.png)")
    t.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    t.add_argument("--quiet", action="store_true", help="no per-epoch lines or progress bar")
    t.add_argument("--mesh", default=keyword_default(runs.train, "mesh"), help="data=N: split each batch over N "
                   "devices; 'none': one device; default %(default)s = every local device (on a CPU: one per core, "
                   "see JENA_RNN_CPU_DEVICES), or every device of the job under --distributed")
    add_distributed_args(t)
    add_data_args(t)


# the sweep's axes (``sweep.grid.AXES``): the vmapped ones share one compiled program, the others form groups
SWEEP_HELP = {
    "--lr": "learning rates, vmapped in one program (e.g. 1e-4,3e-4,1e-3 or 1e-4:1e-2; "
            "default {optim.learning_rate})",
    "--rho": "RMSprop decays in [0, 1), vmapped (e.g. 0.9,0.99; default {optim.decay})",
    "--dropout": "input dropout rates in [0, 1), vmapped (e.g. 0,0.2; default: the model's)",
    "--recurrent-dropout": "recurrent dropout rates in [0, 1), vmapped (e.g. 0,0.2,0.5; default: the model's)",
    "--units": "hidden units per layer; each value is its own group, i.e. its own compiled program "
               "(e.g. 16,32,64; default: the model's)",
    "--reset-after": "GRU forms: 0 = reset before the matmul (the lecture's), 1 = after (Keras 2.3+, PyTorch); "
                     "one group each (e.g. 0,1; default {layer.reset_after:d})",
    "--cell": "recurrent cells ({cells}); one group each (e.g. gru,lstm; default: the model's)",
}
SWEEP_RANGES = ("--lr", "--rho", "--dropout", "--recurrent-dropout")  # the axes a LO:HI range makes sense for


def add_sweep(sub) -> None:
    """The ``sweep`` subcommand (defaults: ``sweep.grid.expand``, ``TrainConfig``)."""
    tr = TrainConfig()
    w = sub.add_parser("sweep", help="train many models in one vmapped program; leaderboard results.md/.csv")
    w.add_argument("--model", default="gru", choices=sorted(set(LECTURE_MODELS) - {"naive", "mlp"}),
                   help="the lecture's experiment to start from (default %(default)s)")
    optim, layer = OptimConfig(), LayerConfig()
    for flag, what in SWEEP_HELP.items():
        w.add_argument(flag, metavar="A,B,..|LO:HI" if flag in SWEEP_RANGES else "A,B,..",
                       help=what.format(optim=optim, layer=layer, cells=", ".join(CELLS)))
    w.epilog = ("A,B,.. lists are swept as a grid (every combination); LO:HI ranges need --samples N (random "
                "search: the learning rate drawn log-uniformly, the others uniformly). Axes left out keep the "
                "--model preset's value.")
    w.add_argument("--seeds", type=v.positive_int, default=keyword_default(grid.expand, "seeds"),
                   help="seeds 0..N-1 per point (init and data order; default %(default)s)")
    w.add_argument("--samples", type=v.positive_int, help="random search: N points drawn from the lists/ranges")
    w.add_argument("--sample-seed", type=int, default=keyword_default(grid.expand, "sample_seed"),
                   help="seed of the random search (default %(default)s)")
    w.add_argument("--epochs", type=v.positive_int, help="epochs (default: the lecture's for the model)")
    w.add_argument("--steps-per-epoch", type=v.positive_int, help=f"batches per epoch (default {tr.steps_per_epoch})")
    w.add_argument("--patience", type=v.positive_int,
                   help=f"early stopping patience per member (default {shown(tr.patience)})")
    w.add_argument("--mesh", default=keyword_default(search.run_search, "mesh"), help="devices: sweep=N,data=M "
                   "(one may be -1 = the rest), or none; default %(default)s = the members split over every "
                   "local device (on a CPU: one per core), or every device of the job under --distributed")
    add_distributed_args(w)
    w.add_argument("--out", required=True, type=v.path,
                   help="sweep directory (groups/, members/, results.md/.csv, plot)")
    w.add_argument("--resume", action="store_true", help="continue the sweep in --out")
    w.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    add_data_args(w)


def add_imdb(sub) -> None:
    """The ``imdb`` subcommand (defaults: ``imdb.IMDBConfig`` and its first layer)."""
    cfg = IMDBConfig()
    layer = cfg.layers[0]
    m = sub.add_parser("imdb", help="the lecture's IMDB sentiment LSTM (synthetic review corpus by default)")
    m.add_argument("--data", type=v.path, metavar="PATH", default=cfg.data, help="imdb.npz, an aclImdb folder, or a "
                   "folder holding one (default: a synthetic review corpus in aclImdb layout, written to the cache)")
    m.add_argument("--max-features", type=v.positive_int, default=cfg.max_features,
                   help="vocabulary size (default %(default)s)")
    m.add_argument("--maxlen", type=v.positive_int, default=cfg.maxlen,
                   help="tokens kept per review (default %(default)s)")
    m.add_argument("--epochs", type=v.positive_int, default=cfg.epochs, help="epochs (default %(default)s)")
    m.add_argument("--batch-size", type=v.positive_int, default=cfg.batch_size,
                   help="reviews per batch (default %(default)s)")
    m.add_argument("--units", type=v.positive_int, default=layer.units, help="recurrent units (default %(default)s)")
    m.add_argument("--cell", choices=CELLS, default=layer.cell, help="default %(default)s")
    m.add_argument("--bidirectional", action="store_true", default=layer.bidirectional,
                   help="bidirectional recurrent layer")
    m.add_argument("--recurrent-dropout", type=v.rate, default=layer.recurrent_dropout,
                   help="recurrent dropout rate (default %(default)s)")
    m.add_argument("--seed", type=v.seed, default=cfg.seed,
                   help="seed for init, shuffles and dropout (default %(default)s)")
    m.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    m.add_argument("--quiet", action="store_true", help="no per-epoch lines or progress bar")
    m.add_argument("--out", required=True, type=v.path, help="run directory (checkpoints, history, history.png)")
    add_distributed_args(m)


def build_parser() -> argparse.ArgumentParser:
    """The ``jena-rnn`` parser: one subparser per command."""
    parser = Parser(prog="jena-rnn", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    add_train(sub)
    split, which = keyword_default(runs.evaluate, "split"), keyword_default(runs.evaluate, "which")
    e = sub.add_parser("evaluate", help="MAE of a trained run on a split")
    e.add_argument("run_dir")
    e.add_argument("--split", default=split, choices=("train", "val", "test"),
                   help="the split whose windows are scored: train, val or test (default %(default)s)")
    e.add_argument("--which", default=which, help="best, latest or an epoch number (default %(default)s)")
    e.add_argument("--data", type=v.path, metavar="FILE", help="evaluate on another file (default: the run's data)")

    b = sub.add_parser("baseline", help="the naive method (T in 24 h = T now) on validation and test")
    add_data_args(b)

    d = DataConfig()
    rows = d.delay + d.step  # the Jena file has one row per 10 minutes
    p = sub.add_parser("predict", help="forecast the target DELAY + STEP rows after a file's last row (the "
                       f"lecture's windows: {d.delay} + {d.step} = {rows} rows, {rows / 6:g} h, "
                       f"not {d.delay / 6:g} h); "
                       "the output names the row and time")
    p.add_argument("run_dir")
    p.add_argument("--data", type=v.path, metavar="FILE", help="file to forecast from (default: the run's data)")
    p.add_argument("--which", default=keyword_default(runs.predict, "which"),
                   help="best, latest or an epoch number (default %(default)s)")

    quick = reproduce.QUICK
    r = sub.add_parser("reproduce", help="run the lecture's experiments; write results.md/.csv and plots")
    r.add_argument("--out", required=True, type=v.path, help="output directory (one run directory per experiment)")
    r.add_argument("--only", help="comma-separated subset of experiments (default: all)")
    r.add_argument("--quick", action="store_true", help=f"{quick['epochs']} epochs of {quick['steps_per_epoch']} "
                   "steps each: a smoke test, not results")
    r.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    add_data_args(r)

    add_sweep(sub)
    s = sub.add_parser("synth", help="write the synthetic Jena data in the real file's exact format")
    s.add_argument("--out", required=True, type=v.path, help="output CSV path")
    s.add_argument("--rows", type=v.positive_int, default=d.synthetic_rows, help="rows (default %(default)s)")
    s.add_argument("--seed", type=v.seed, default=d.synthetic_seed, help="seed (default %(default)s)")
    add_imdb(sub)
    return parser


def experiment_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one ``experiments/<name>.py`` script: ``[--quick] [--data FILE] [--out DIR]``."""
    quick = reproduce.QUICK
    p = Parser(prog=f"experiments/{name}.py",
               description=f"The lecture's {name} experiment (jena_rnn.forecast.reproduce)")
    p.add_argument("--data", type=v.path, help="Jena-format CSV (default: the synthetic default)")
    p.add_argument("--quick", action="store_true",
                   help=f"{quick['epochs']} epochs x {quick['steps_per_epoch']} steps (smoke test)")
    p.add_argument("--out", type=v.path, default=EXPERIMENTS_OUT,
                   help="parent of the run directory (default %(default)s)")
    return p
