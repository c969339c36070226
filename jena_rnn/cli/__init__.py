"""The ``jena-rnn`` command line: flags become a ``Config``, then one library function runs.

Subcommands: ``train``, ``evaluate``, ``baseline``, ``predict``, ``reproduce``, ``sweep``, ``synth``,
``imdb``; ``experiment`` is the command line of the ``experiments/*.py`` scripts. Bad values end with a
one-line ``jena-rnn: error: ...`` message and exit status 2 (1 for a diverged run), never a traceback.

This package is the only place that parses flags (``argparse``, ``sys.argv``): ``parsers`` (the
subcommands' flags), ``values`` (one flag's text to one value), ``configs`` (parsed flags to configs);
here, the dispatch and the one printer of errors and warnings.
"""
from __future__ import annotations

import contextlib
import json
import sys
import warnings
from pathlib import Path

from jena_rnn.cli import values
from jena_rnn.cli.configs import (apply_sets, data_config, experiment_config, imdb_config, sweep_axes, sweep_base,
                                  train_config)
from jena_rnn.cli.parsers import UsageError, build_parser, experiment_parser
from jena_rnn.cli.values import parse_splits
from jena_rnn.config import Config, DataConfig, lecture_config

EXIT_USAGE = 2  # a bad flag, value, file or run directory
EXIT_DIVERGED = 1  # training stopped on a non-finite loss
PROG = "jena-rnn"
# what a library call raises for bad input: printed as one line, never a traceback
BAD_INPUT = (ValueError, FileNotFoundError, FileExistsError, FloatingPointError, OSError)

__all__ = ["main", "experiment", "build_parser", "experiment_parser", "train_config", "data_config", "apply_sets",
           "parse_splits", "EXIT_USAGE", "EXIT_DIVERGED"]


def fail(exc: BaseException) -> None:
    """Print ``exc`` as one ``PROG: error:`` line (a flag argparse refused: plus where the help is); exit."""
    if isinstance(exc, UsageError):
        print(f"{exc.prog}: error: {exc}\n(see `{exc.prog} --help`)", file=sys.stderr)
    else:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
    sys.exit(EXIT_DIVERGED if isinstance(exc, FloatingPointError) else EXIT_USAGE)


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """Format a warning as one ``jena-rnn: warning: ...`` line (not Python's two-line source form)."""
    return f"{PROG}: warning: {message}\n"


@contextlib.contextmanager
def _one_line_warnings():
    previous, warnings.formatwarning = warnings.formatwarning, _warning_line
    try:
        yield
    finally:
        warnings.formatwarning = previous


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``jena-rnn`` (``argv``: default ``sys.argv[1:]``); returns 0, or exits 1 or 2."""
    with _one_line_warnings():
        try:
            out = _run(build_parser().parse_args(argv))
        except BAD_INPUT as exc:
            fail(exc)
    if out is not None:
        print(json.dumps(out, indent=2))
    return 0


def start_distributed(args) -> None:
    """Call ``distributed.initialize`` if ``args`` asks for several processes (before any computation)."""
    from jena_rnn.runtime import distributed

    if args.distributed or args.coordinator or args.num_processes or args.process_id is not None:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)


def _run(args) -> dict | None:
    """Run the parsed command; return what it prints as JSON."""
    from jena_rnn.runtime import distributed
    from jena_rnn.forecast import runs

    distributed.use_cpu_cores()  # one JAX device per core; before any computation
    if args.command in ("train", "sweep", "imdb"):
        start_distributed(args)  # before any mesh is built from jax.devices()
    if args.command == "train":
        return runs.train(train_config(args), args.out, resume=args.resume, quiet=args.quiet,
                          mesh=values.mesh_option(args.mesh, axes=("data",)))
    if args.command == "baseline":
        return runs.baseline(data_config(args, DataConfig()))
    if args.command == "evaluate":
        return runs.evaluate(args.run_dir, split=args.split, which=values.which(args.which), data_path=args.data)
    if args.command == "predict":
        return runs.predict(args.run_dir, data_path=args.data, which=values.which(args.which))
    if args.command == "reproduce":
        from jena_rnn.forecast import reproduce

        only = args.only.split(",") if args.only else None
        return reproduce.reproduce(args.out, data=data_config(args, DataConfig()), only=only, quick=args.quick,
                                   quiet=args.quiet)
    if args.command == "imdb":
        from jena_rnn import imdb

        return imdb.run(imdb_config(args), args.out, resume=args.resume, quiet=args.quiet)
    if args.command == "sweep":
        from jena_rnn import sweep

        base = sweep_base(args, data_config(args, DataConfig()))
        configs = sweep.expand(base, sweep_axes(args), seeds=args.seeds, samples=args.samples,
                               sample_seed=args.sample_seed)
        return sweep.run_search(configs, args.out, resume=args.resume, mesh=values.mesh_option(args.mesh),
                                quiet=args.quiet)
    return runs.synth(args.out, rows=args.rows, seed=args.seed)


def experiment(name: str, config: Config | None = None, argv: list[str] | None = None) -> dict:
    """Command line of one ``experiments/<name>.py`` script: ``[--quick] [--data FILE] [--out DIR]``.

    Runs ``reproduce.run_experiment`` on ``config`` (default ``lecture_config(name)``; ``imdb_lstm`` has
    none) with the script's flags applied, into ``OUT/<name>``; prints the result row as JSON and returns it.
    """
    from jena_rnn.forecast import reproduce
    from jena_rnn.runtime import distributed

    with _one_line_warnings():
        try:
            parser = experiment_parser(name)
            args = parser.parse_args(argv)
            distributed.use_cpu_cores()  # one device per core, as `jena-rnn` (runs.train then trains data-parallel)
            if name == "imdb_lstm":
                if args.data:
                    parser.error("--data: use `jena-rnn imdb --data imdb.npz|aclImdb --out DIR` for the real reviews")
                config = None
            else:
                config = experiment_config(args, config or lecture_config(name))
            row = reproduce.run_experiment(name, config, Path(args.out) / name, quick=args.quick)
        except BAD_INPUT as exc:
            fail(exc)
    print(json.dumps(row, indent=2))
    return row
