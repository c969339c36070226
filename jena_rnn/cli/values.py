"""Value parsers of the command line: one flag's text becomes one value, or a message naming the flag.

Functions used as argparse ``type=`` raise ``argparse.ArgumentTypeError`` (argparse adds the flag's name);
the others raise ``ValueError`` with the flag's name in the message. Nothing here touches a device.
"""
from __future__ import annotations

import argparse

from jena_rnn.config import SEED_RANGE, DataConfig
from jena_rnn.runtime import distributed
from jena_rnn.sweep.grid import AXES as SWEEP_AXES


def _bound(text: str, flag: str):
    text = text.strip()
    if text in ("", "end", "None"):
        return None
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{flag}: {text!r} is neither a row index nor a fraction") from None


def format_splits(data: DataConfig) -> str:
    """Write ``data``'s train, val and test bounds as ``--splits`` text (``parse_splits`` reads it back)."""
    return ",".join(":".join("" if b is None else str(b) for b in getattr(data, name))
                    for name in ("train", "val", "test"))


def parse_splits(text: str) -> dict:
    """Parse ``--splits`` ``"LO:HI,LO:HI,LO:HI"`` (rows, or fractions with a dot; empty HI = end)."""
    parts = text.split(",")
    if len(parts) != 3 or any(p.count(":") != 1 for p in parts):
        raise argparse.ArgumentTypeError(
            f"--splits: expected three LO:HI ranges for train,val,test (e.g. {format_splits(DataConfig())}), "
            f"got {text!r}")
    return {name: tuple(_bound(b, "--splits") for b in p.split(":"))
            for name, p in zip(("train", "val", "test"), parts)}


def integer(lo: int, hi: int | None, what: str):
    """An argparse type: an integer in [lo, hi) (``hi=None``: no upper bound); ``what`` names it in errors."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < lo or (hi is not None and v >= hi):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v
    return parse


positive_int = integer(1, None, "a positive integer")
seed = integer(*SEED_RANGE, f"a seed in [{SEED_RANGE[0]}, {SEED_RANGE[1]})")


def number(lo: float, hi: float, what: str, *, lo_open: bool = False, hi_open: bool = True):
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


def path(text: str) -> str:
    """An argparse type: a non-empty path (an empty one would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return text


def nonempty(text: str) -> str:
    """An argparse type: any text but the empty string."""
    if not text:
        raise argparse.ArgumentTypeError("expected a value, got an empty string")
    return text


rate = number(0.0, 1.0, "a rate in [0, 1)")  # dropout rates


def columns(text: str) -> tuple[str, ...]:
    """Parse ``--columns A,B,...``; refuse an empty item or a column named twice."""
    names = tuple(c.strip() for c in text.split(","))
    for k, name in enumerate(names):
        if not name:
            raise ValueError(f"--columns: item {k + 1} of {text!r} is empty")
        if name in names[:k]:
            raise ValueError(f"--columns: {name!r} is named twice")
    return names


def list_of(text: str, cast, flag: str) -> list:
    """Parse ``a,b,c`` with ``cast`` applied to each item (``flag`` names the option in errors)."""
    try:
        return [cast(t) for t in text.split(",")]
    except (ValueError, argparse.ArgumentTypeError) as e:
        raise ValueError(f"{flag}: {e}") from None


def which(text: str):
    """Parse ``--which``: ``best``, ``latest`` or an epoch number."""
    if text in ("best", "latest"):
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--which: expected best, latest or an epoch number, got {text!r}") from None


def parse_mesh(text: str | None) -> dict[str, int] | None:
    """Parse ``--mesh "sweep=2,data=2"`` (``-1`` or ``all`` = every remaining device) into an axis dict."""
    if not text:
        return None
    shape = {}
    for part in text.split(","):
        name, sep, size = part.partition("=")
        name = name.strip()
        if not sep or name not in distributed.AXES or name in shape:
            raise ValueError(f"--mesh: expected AXIS=SIZE pairs with AXIS in {distributed.AXES}, got {text!r}")
        try:
            shape[name] = -1 if size.strip() in ("-1", "all") else int(size)
        except ValueError:
            raise ValueError(f"--mesh: {size!r} is not a device count") from None
        if shape[name] == 0 or shape[name] < -1:
            raise ValueError(f"--mesh: {name}={size.strip()}: a device count must be >= 1 (or -1/all = the rest)")
    return shape


def mesh_option(text: str | None, *, axes: tuple[str, ...] = distributed.AXES):
    """Turn a ``--mesh`` value into "auto" (None or "auto"), None ("none") or a ``Mesh``.

    ``AXIS=SIZE,...`` takes the first devices of ``jax.devices()`` (``distributed.first_devices_mesh``),
    so call it only after ``jax.distributed`` has started. ``axes`` limits the axis names allowed.
    """
    if text in (None, "auto"):
        return "auto"
    if text == "none":
        return None
    shape = parse_mesh(text)
    if not set(shape) <= set(axes):
        raise ValueError(f"--mesh {text!r}: only the axes {list(axes)} apply here")
    return distributed.first_devices_mesh(shape)


def parse_axis(text: str, axis: str):
    """Parse a sweep axis ``a,b,c`` into a list or ``lo:hi`` into a range tuple (for ``--samples``).

    ``axis`` is a key of ``sweep.grid.AXES``, whose type casts each item; a boolean axis takes
    1/true/yes/after as True. A value given twice is refused (two members would train the same point).
    """
    cast = SWEEP_AXES[axis][2]
    cast = (lambda t: t.strip().lower() in ("1", "true", "yes", "after")) if cast is bool else cast
    try:
        if ":" in text:
            lo, hi = (float(t) for t in text.split(":"))
            if not lo < hi:
                raise ValueError(f"empty range {text!r}")
            return (lo, hi)
        values = [cast(t) for t in text.split(",")]
        for k, v in enumerate(values):
            if v in values[:k]:  # two members would train the same configuration under two names
                raise ValueError(f"{v!r} is given twice in {text!r}")
        return values
    except ValueError as e:
        raise ValueError(f"--{axis.replace('_', '-')}: {e}") from None
