"""Small files in the real Jena file's exact format, for the loader tests (no reads of ../shared)."""
import gzip
import zipfile
from pathlib import Path

import numpy as np

from jena_rnn.data.synthetic import synthetic_jena

HEAD = Path(__file__).parent / "data" / "jena_head.csv"
HEADER, *HEAD_ROWS = HEAD.read_text().splitlines()


def jena_lines(n_extra=40):
    """The real head rows plus `n_extra` synthetic rows continuing the 10-minute grid, as text lines."""
    table = synthetic_jena(n_rows=12 + n_extra, seed=3)
    body = []
    for t, row in zip(np.datetime_as_string(table.times[12:], unit="s"), table.values[12:]):
        date = f"{t[8:10]}.{t[5:7]}.{t[0:4]} {t[11:19]}"
        body.append(date + "," + ",".join(f"{v:.2f}" for v in row))
    return [HEADER] + HEAD_ROWS + body


def write(tmp_path, lines, name="jena.csv"):
    text = "\n".join(lines) + "\n"
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt", newline="") as f:
            f.write(text)
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(name[:-4], text)
    else:
        path.write_text(text)
    return path


def edit(lines, line, col, value):
    """Set field `col` (0 = date) of 1-based file line `line`."""
    fields = lines[line - 1].split(",")
    fields[col] = value
    lines[line - 1] = ",".join(fields)
    return lines
