"""The loaded table and the Jena file's format: its column names, date format, archive and value ranges.

Both the reader (``files``) and the offline generator (``synthetic``) import these; neither imports the
other, so reading a file never imports the generator.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Table", "unit_of", "JENA_COLUMNS", "JENA_TIME_FORMAT", "JENA_URL", "JENA_URL_TF", "JENA_ZIP_BYTES", "JENA_BOUNDS"]

JENA_COLUMNS = ("p (mbar)", "T (degC)", "Tpot (K)", "Tdew (degC)", "rh (%)", "VPmax (mbar)", "VPact (mbar)",
                "VPdef (mbar)", "sh (g/kg)", "H2OC (mmol/mol)", "rho (g/m**3)", "wv (m/s)", "max. wv (m/s)",
                "wd (deg)")
JENA_TIME_FORMAT = "%d.%m.%Y %H:%M:%S"
JENA_URL = "https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip"  # the book's
JENA_URL_TF = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/jena_climate_2009_2016.csv.zip"
JENA_ZIP_BYTES = 13_568_290  # size of both published archives
# Physically possible ranges of the Jena columns (a ground station in central Germany, with wide margins;
# the real file stays well inside them once its -9999 wind sentinels are handled).
JENA_BOUNDS = {"p (mbar)": (500, 1100), "T (degC)": (-80, 60), "Tpot (K)": (190, 340), "Tdew (degC)": (-100, 60),
               "rh (%)": (0, 105), "VPmax (mbar)": (0, 200), "VPact (mbar)": (0, 200), "VPdef (mbar)": (0, 200),
               "sh (g/kg)": (0, 150), "H2OC (mmol/mol)": (0, 250), "rho (g/m**3)": (700, 1700),
               "wv (m/s)": (0, 120), "max. wv (m/s)": (0, 120), "wd (deg)": (0, 360)}


def unit_of(column: str) -> str:
    """The unit in a column name, as a plot or a log line writes it: ``"T (degC)"`` -> ``"°C"``,
    ``"p (mbar)"`` -> ``"mbar"``, ``"wd (deg)"`` -> ``"°"``; a name without one -> ``"target units"``."""
    head, sep, tail = column.rpartition(" (")
    if not (sep and head and tail.endswith(")") and len(tail) > 1):
        return "target units"
    unit = tail[:-1]
    return {"degC": "°C", "deg": "°"}.get(unit, unit)


class Table(NamedTuple):
    """A loaded series: times [N] datetime64[ns] or None, values [N, F] float32, column names, report."""

    times: np.ndarray | None
    values: np.ndarray
    columns: tuple[str, ...]
    report: dict
