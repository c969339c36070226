"""The ``jena-rnn`` command line: flags become a ``Config``, then one library function runs.

Subcommands: ``train``, ``evaluate``, ``baseline``, ``predict``, ``synth``. Bad values end with a
one-line ``jena-rnn: error: ...`` message and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import warnings

from jena_rnn.config import (EVAL_MODES, LECTURE_MODELS, OPTIMIZERS, OTHER_SENTINEL_POLICIES, OUTLIER_POLICIES,
                             SENTINEL_POLICIES, Config, DataConfig, fits, lecture_config)

EXIT_USAGE = 2


def _bound(text: str, flag: str):
    text = text.strip()
    if text in ("", "end", "None"):
        return None
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{flag}: {text!r} is neither a row index nor a fraction") from None


def parse_splits(text: str) -> dict:
    """Parse ``--splits`` ``"LO:HI,LO:HI,LO:HI"`` (rows, or fractions with a dot; empty HI = end)."""
    parts = text.split(",")
    if len(parts) != 3 or any(p.count(":") != 1 for p in parts):
        raise argparse.ArgumentTypeError(
            f"--splits: expected three LO:HI ranges for train,val,test (e.g. 0:200000,200001:300000,300001:), "
            f"got {text!r}")
    return {name: tuple(_bound(b, "--splits") for b in p.split(":"))
            for name, p in zip(("train", "val", "test"), parts)}


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _number(lo: float, hi: float, what: str, *, lo_open: bool = False, hi_open: bool = True):
    """An argparse type: a float in [lo, hi) (``lo_open``: (lo, ...); ``hi_open=False``: ..., hi])."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (v > lo if lo_open else v >= lo) or not (v < hi if hi_open else v <= hi) or v != v:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v
    return parse


def _path(text: str) -> str:
    """An argparse type: a non-empty path (an empty one would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return text


SEED_RANGE = (-(2 ** 31), 2 ** 32)  # what jax.random.PRNGKey and numpy's generators take


def _seed(text: str) -> int:
    """An argparse type: an integer seed in ``SEED_RANGE``."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not SEED_RANGE[0] <= v < SEED_RANGE[1]:
        raise argparse.ArgumentTypeError(f"expected a seed in [{SEED_RANGE[0]}, {SEED_RANGE[1]}), got {text!r}")
    return v


def _nonempty(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("expected a value, got an empty string")
    return text


def _rate(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1), got {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1), got {text!r}")
    return v


def add_data_args(p: argparse.ArgumentParser) -> None:
    """Add the data options shared by every command that reads data."""
    g = p.add_argument_group("data")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--data", type=_path, metavar="FILE", help="CSV (.csv, .csv.zip, .csv.gz); default: the synthetic Jena data")
    src.add_argument("--synthetic", action="store_true", help="use the embedded synthetic Jena default (the default)")
    g.add_argument("--lookback", type=_positive_int, help="rows of history per window (default 1440 = 10 days)")
    g.add_argument("--step", type=_positive_int, help="keep one row in STEP inside a window (default 6 = hourly)")
    g.add_argument("--delay", type=_positive_int, help="forecast horizon in rows (default 144 = 24 h)")
    g.add_argument("--batch-size", type=_positive_int, help="samples per batch (default 128)")
    g.add_argument("--target", metavar="COLUMN", help="column to forecast (default 'T (degC)')")
    g.add_argument("--time-column", metavar="COLUMN", type=_nonempty, help="timestamp column (default 'Date Time'; 'none' for none)")
    g.add_argument("--time-format", metavar="FMT", type=_nonempty, help="strptime format of the timestamps (default %%d.%%m.%%Y %%H:%%M:%%S)")
    g.add_argument("--splits", type=parse_splits, metavar="LO:HI,LO:HI,LO:HI",
                   help="train,val,test end-row ranges: rows or fractions (default 0:200000,200001:300000,300001:)")
    g.add_argument("--eval-mode", choices=EVAL_MODES,
                   help="full: every window of a split once (default); lecture: the book's val_steps batches")
    g.add_argument("--strict-targets", action="store_true", default=None,
                   help="keep targets inside each split (the lecture lets them reach DELAY rows past it)")
    g.add_argument("--columns", metavar="A,B,...", help="feature columns to use, in this order (comma-separated); "
                   "describing the file this way reads a Jena-like header as a generic CSV")
    g.add_argument("--sentinel-policy", choices=SENTINEL_POLICIES,
                   help="what to do with -9999 error values in the wind columns (default zero, as the TensorFlow "
                   "tutorial)")
    g.add_argument("--sentinel-elsewhere", choices=OTHER_SENTINEL_POLICIES,
                   help="what to do with -9999 in any other column (default error: refused, naming line and column)")
    g.add_argument("--outliers", choices=OUTLIER_POLICIES,
                   help="physically impossible values, or values more than 100 robust spreads from a column's "
                   "median: error (default: refused, naming line, column and value) or keep")
    g.add_argument("--allow-overlap", action="store_true", default=None,
                   help="accept train/val/test ranges that overlap or are out of order (refused by default)")
    g.add_argument("--synthetic-rows", type=_positive_int, help="rows of the synthetic default (default 420551)")


def add_distributed_args(p: argparse.ArgumentParser) -> None:
    """Add the multi-process options (``jax.distributed``) of ``train``, ``sweep`` and ``imdb``."""
    g = p.add_argument_group("multi-process (jax.distributed; docs/scaling.md)")
    g.add_argument("--distributed", action="store_true", help="call jax.distributed.initialize: the cluster "
                   "from SLURM/Open MPI/TPU, or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID, "
                   "or the three flags below (which imply --distributed)")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0's coordinator")
    g.add_argument("--num-processes", type=_positive_int, help="processes in the job")
    g.add_argument("--process-id", type=int, help="this process's id, 0..N-1")


def start_distributed(args) -> None:
    """Call ``distributed.initialize`` if ``args`` asks for several processes (before any computation)."""
    from jena_rnn.runtime import distributed

    if args.distributed or args.coordinator or args.num_processes or args.process_id is not None:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)


def _columns(text: str) -> tuple[str, ...]:
    """Parse ``--columns A,B,...``; refuse an empty item or a column named twice."""
    names = tuple(c.strip() for c in text.split(","))
    for k, name in enumerate(names):
        if not name:
            raise ValueError(f"--columns: item {k + 1} of {text!r} is empty")
        if name in names[:k]:
            raise ValueError(f"--columns: {name!r} is named twice")
    return names


def data_config(args, base: DataConfig) -> DataConfig:
    """Apply the data flags of ``args`` to ``base``."""
    fields = {"path": args.data, "lookback": args.lookback, "step": args.step, "delay": args.delay,
              "batch_size": args.batch_size, "target": args.target, "time_format": args.time_format,
              "eval_mode": args.eval_mode, "strict_targets": args.strict_targets,
              "sentinel_policy": args.sentinel_policy, "other_sentinel_policy": args.sentinel_elsewhere,
              "outlier_policy": args.outliers, "allow_overlap": args.allow_overlap,
              "synthetic_rows": args.synthetic_rows}
    if args.columns is not None:
        fields["columns"] = _columns(args.columns)
    if args.splits is not None:
        fields.update(args.splits)
    changes = {k: v for k, v in fields.items() if v is not None}
    if args.time_column is not None:  # after the filter: 'none' means None, which must not be dropped
        changes["time_column"] = None if args.time_column.lower() == "none" else args.time_column
    if args.synthetic:
        changes["path"] = None
    if changes.get("path", base.path) is None:  # the synthetic default has no text dates to parse
        given = [flag for flag, v in (("--time-format", args.time_format), ("--time-column", args.time_column))
                 if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: only for a --data file (the synthetic default has no text "
                             "dates to parse); pass --data FILE or drop the flag")
    return dataclasses.replace(base, **changes)


def _list(text: str, cast, flag: str):
    try:
        return [cast(t) for t in text.split(",")]
    except (ValueError, argparse.ArgumentTypeError) as e:
        raise ValueError(f"{flag}: {e}") from None


def train_config(args) -> Config:
    """Build the training ``Config`` from the ``train`` flags (the lecture's preset, then overrides)."""
    cfg = lecture_config(args.model)
    layers = list(cfg.model.layers)
    per_layer = {"units": (args.units, int), "dropout": (args.dropout, _rate),
                 "recurrent_dropout": (args.recurrent_dropout, _rate), "activation": (args.activation, str)}
    for name, (text, cast) in per_layer.items():
        if text is None:
            continue
        values = _list(text, cast, "--" + name.replace("_", "-"))
        if len(values) not in (1, len(layers)):
            raise ValueError(f"--{name.replace('_', '-')}: give 1 or {len(layers)} values, got {len(values)}")
        values = values * len(layers) if len(values) == 1 else values
        layers = [dataclasses.replace(layer, **{name: v}) for layer, v in zip(layers, values)]
    if args.reset_after:
        layers = [dataclasses.replace(layer, reset_after=True) for layer in layers]
    if args.bidirectional:
        layers = [dataclasses.replace(layer, bidirectional=True) for layer in layers]
    model = dataclasses.replace(cfg.model, layers=tuple(layers))
    if args.mlp_units is not None:
        model = dataclasses.replace(model, mlp_units=args.mlp_units)
    if args.hoist_input is not None:
        model = dataclasses.replace(model, hoist_input=args.hoist_input == "on")
    data = data_config(args, cfg.data)
    if args.reverse:
        data = dataclasses.replace(data, reverse=True)
    optim = dataclasses.replace(cfg.optim, **{k: v for k, v in {
        "name": args.optimizer, "learning_rate": args.lr, "decay": args.rho, "eps": args.eps}.items()
        if v is not None})
    train = dataclasses.replace(cfg.train, **{k: v for k, v in {
        "epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "seed": args.seed,
        "patience": args.patience}.items() if v is not None})
    return apply_sets(Config(data=data, model=model, optim=optim, train=train), args.set or [])


def apply_sets(cfg: Config, sets: list[str]) -> Config:
    """Apply ``--set section.field=value`` overrides, type-checked against the current value."""
    for item in sets:
        key, sep, text = item.partition("=")
        section, _, name = key.partition(".")
        sub = getattr(cfg, section, None)
        if not sep or sub is None or section not in ("data", "model", "optim", "train") \
                or name not in {f.name for f in dataclasses.fields(sub)}:
            raise ValueError(f"--set {item!r}: expected SECTION.FIELD=VALUE with SECTION in "
                             "data|model|optim|train and an existing field")
        if key == "model.layers":
            raise ValueError("--set model.layers: use --units, --dropout, --recurrent-dropout, --activation, "
                             "--reset-after and --bidirectional, or build a ModelConfig in Python")
        current = getattr(sub, name)
        try:
            value = json.loads(text) if not isinstance(current, str) else text
        except json.JSONDecodeError:
            value = text
        annotation = next(f.type for f in dataclasses.fields(sub) if f.name == name)
        if not fits(value, str(annotation)):  # the same check config.json gets (config.config_from_saved)
            raise ValueError(f"--set {item!r}: {key} must be {annotation}, got {value!r}")
        if isinstance(value, list):
            value = tuple(value)
        try:
            cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(sub, **{name: value})})
        except (TypeError, AttributeError) as e:  # e.g. a string where a number was expected
            raise ValueError(f"--set {item!r}: {e}") from None
    return cfg


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
        print(f"{self.prog}: error: {message}\n(see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="jena-rnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a lecture model (checkpoints, history, plot in --out)")
    t.add_argument("--model", default="gru", choices=sorted(set(LECTURE_MODELS) - {"naive"}),
                   help="the lecture's experiment to start from (default gru)")
    t.add_argument("--units", help="hidden units, one value or one per layer (e.g. 32,64)")
    t.add_argument("--dropout", help="input dropout rate(s), one mask per sequence")
    t.add_argument("--recurrent-dropout", help="recurrent dropout rate(s), one mask per sequence")
    t.add_argument("--activation", help="candidate activation(s): tanh, relu, sigmoid, linear")
    t.add_argument("--reset-after", action="store_true", help="GRU: Keras-default/PyTorch form (reset after the matmul)")
    t.add_argument("--bidirectional", action="store_true", help="make every recurrent layer bidirectional")
    t.add_argument("--reverse", action="store_true", help="feed windows in reversed time order")
    t.add_argument("--mlp-units", type=_positive_int, help="MLP hidden width (default 32)")
    t.add_argument("--hoist-input", choices=("on", "off"), help="input projection before the scan (default: per backend)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, help="default rmsprop")
    t.add_argument("--lr", type=_number(0, float("inf"), "a positive learning rate", lo_open=True), help="learning rate (default 1e-3)")
    t.add_argument("--rho", type=_number(0, 1, "an RMSprop decay in [0, 1)"), help="RMSprop decay (default 0.9)")
    t.add_argument("--eps", type=_number(0, float("inf"), "an epsilon >= 0"), help="RMSprop epsilon, inside the square root as Keras (default 1e-7)")
    t.add_argument("--epochs", type=_positive_int, help="epochs (default: the lecture's for the model)")
    t.add_argument("--steps-per-epoch", type=_positive_int, help="batches per epoch (default 500)")
    t.add_argument("--seed", type=_seed, help="seed for init, batches and dropout (default 0)")
    t.add_argument("--patience", type=_positive_int, help="early stopping patience in epochs (default off)")
    t.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE", help="any other config field")
    t.add_argument("--out", required=True, type=_path, help="run directory (checkpoints, history, loss.png)")
    t.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    t.add_argument("--quiet", action="store_true", help="no per-epoch lines or progress bar")
    t.add_argument("--mesh", default="auto", help="data=N: split each batch over N devices; 'none': one device; "
                   "default auto = every local device (on a CPU: one per core, see JENA_RNN_CPU_DEVICES), or every "
                   "device of the job under --distributed")
    add_distributed_args(t)
    add_data_args(t)

    e = sub.add_parser("evaluate", help="MAE of a trained run on a split")
    e.add_argument("run_dir")
    e.add_argument("--split", default="test", choices=("train", "val", "test"))
    e.add_argument("--which", default="best", help="best, latest or an epoch number (default best)")
    e.add_argument("--data", type=_path, metavar="FILE", help="evaluate on another file (default: the run's data)")

    b = sub.add_parser("baseline", help="the naive method (T in 24 h = T now) on validation and test")
    add_data_args(b)

    p = sub.add_parser("predict", help="forecast the target DELAY + STEP rows after a file's last row (the "
                       "lecture's windows: 144 + 6 = 150 rows, 25 h, not 24 h); the output names the row and time")
    p.add_argument("run_dir")
    p.add_argument("--data", type=_path, metavar="FILE", help="file to forecast from (default: the run's data)")
    p.add_argument("--which", default="best", help="best, latest or an epoch number (default best)")

    r = sub.add_parser("reproduce", help="run the lecture's experiments; write results.md/.csv and plots")
    r.add_argument("--out", required=True, type=_path, help="output directory (one run directory per experiment)")
    r.add_argument("--only", help="comma-separated subset of experiments (default: all)")
    r.add_argument("--quick", action="store_true", help="2 epochs of 5 steps each: a smoke test, not results")
    r.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    add_data_args(r)

    w = sub.add_parser("sweep", help="train many models in one vmapped program; leaderboard results.md/.csv")
    w.add_argument("--model", default="gru", choices=sorted(set(LECTURE_MODELS) - {"naive", "mlp"}),
                   help="the lecture's experiment to start from (default gru)")
    for flag, what in (("--lr", "learning rates"), ("--rho", "RMSprop decays"), ("--dropout", "input dropout rates"),
                       ("--recurrent-dropout", "recurrent dropout rates"), ("--units", "hidden units (groups)"),
                       ("--reset-after", "GRU forms 0,1 (groups)"), ("--cell", "cells (groups)")):
        w.add_argument(flag, help=f"{what}: a,b,c (grid) or LO:HI (with --samples; lr log-uniform)")
    w.add_argument("--seeds", type=_positive_int, default=1, help="seeds 0..N-1 per point (init and data order)")
    w.add_argument("--samples", type=_positive_int, help="random search: N points drawn from the lists/ranges")
    w.add_argument("--sample-seed", type=int, default=0, help="seed of the random search (default 0)")
    w.add_argument("--epochs", type=_positive_int, help="epochs (default: the lecture's for the model)")
    w.add_argument("--steps-per-epoch", type=_positive_int, help="batches per epoch (default 500)")
    w.add_argument("--patience", type=_positive_int, help="early stopping patience per member (default off)")
    w.add_argument("--mesh", help="devices: sweep=N,data=M (one may be -1 = the rest), or none; default auto = "
                   "the members split over every local device (on a CPU: one per core), or every device of the "
                   "job under --distributed")
    add_distributed_args(w)
    w.add_argument("--out", required=True, type=_path, help="sweep directory (groups/, members/, results.md/.csv, plot)")
    w.add_argument("--resume", action="store_true", help="continue the sweep in --out")
    w.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    add_data_args(w)

    s = sub.add_parser("synth", help="write the synthetic Jena data in the real file's exact format")
    s.add_argument("--out", required=True, type=_path, help="output CSV path")
    s.add_argument("--rows", type=_positive_int, default=420_551, help="rows (default 420551)")
    s.add_argument("--seed", type=_seed, default=0, help="seed (default 0)")

    m = sub.add_parser("imdb", help="the lecture's IMDB sentiment LSTM (synthetic review corpus by default)")
    m.add_argument("--data", type=_path, metavar="PATH", help="imdb.npz, an aclImdb folder, or a folder holding one "
                   "(default: a synthetic review corpus in aclImdb layout, written to the cache)")
    m.add_argument("--max-features", type=_positive_int, default=10_000, help="vocabulary size (default 10000)")
    m.add_argument("--maxlen", type=_positive_int, default=500, help="tokens kept per review (default 500)")
    m.add_argument("--epochs", type=_positive_int, default=10, help="epochs (default 10)")
    m.add_argument("--batch-size", type=_positive_int, default=128, help="reviews per batch (default 128)")
    m.add_argument("--units", type=_positive_int, default=32, help="recurrent units (default 32)")
    m.add_argument("--cell", choices=("lstm", "gru", "simple_rnn"), default="lstm", help="default lstm")
    m.add_argument("--bidirectional", action="store_true", help="bidirectional recurrent layer")
    m.add_argument("--recurrent-dropout", type=_rate, default=0.0, help="recurrent dropout rate (default 0)")
    m.add_argument("--seed", type=_seed, default=0, help="seed for init, shuffles and dropout (default 0)")
    m.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    m.add_argument("--quiet", action="store_true", help="no per-epoch lines or progress bar")
    m.add_argument("--out", required=True, type=_path, help="run directory (checkpoints, history, history.png)")
    add_distributed_args(m)
    return parser


def _which(text: str):
    if text in ("best", "latest"):
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--which: expected best, latest or an epoch number, got {text!r}") from None


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """Format a warning as one ``jena-rnn: warning: ...`` line (not Python's two-line source form)."""
    return f"jena-rnn: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``jena-rnn``; returns (and exits with) the process status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    previous, warnings.formatwarning = warnings.formatwarning, _warning_line
    try:
        return _run(args)
    finally:
        warnings.formatwarning = previous


def _run(args) -> int:
    """Run the parsed command; bad values end with one ``jena-rnn: error:`` line (exit 2)."""
    from jena_rnn.runtime import distributed
    from jena_rnn.forecast import runs

    try:
        distributed.use_cpu_cores()  # one JAX device per core; before any computation
        if args.command in ("train", "sweep", "imdb"):
            start_distributed(args)
        if args.command == "train":
            out = runs.train(train_config(args), args.out, resume=args.resume, quiet=args.quiet,
                             mesh=distributed.mesh_option(args.mesh, axes=("data",)))
        elif args.command == "baseline":
            out = runs.baseline(data_config(args, DataConfig()))
        elif args.command == "evaluate":
            out = runs.evaluate(args.run_dir, split=args.split, which=_which(args.which), data_path=args.data)
        elif args.command == "predict":
            out = runs.predict(args.run_dir, data_path=args.data, which=_which(args.which))
        elif args.command == "reproduce":
            from jena_rnn.forecast import reproduce

            only = args.only.split(",") if args.only else None
            out = reproduce.reproduce(args.out, data=data_config(args, DataConfig()), only=only,
                                      quick=args.quick, quiet=args.quiet)
        elif args.command == "imdb":
            from jena_rnn import imdb

            out = imdb.run_cli(args)
        elif args.command == "sweep":
            from jena_rnn import sweep

            out = sweep.command(args, data_config(args, DataConfig()))
        else:
            out = runs.synth(args.out, rows=args.rows, seed=args.seed)
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError, OSError) as exc:
        print(f"jena-rnn: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE if not isinstance(exc, FloatingPointError) else 1)
    if out is not None:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    main()
