"""A synthetic series in the exact Jena climate format: the offline default of jena_rnn.

Base processes (T, p, humidity, wind) come from seeded, vectorised noise filters; every other column is
derived from them with the physical relations below, which reproduce the real file's first 12 rows
within its 2-decimal rounding (tests/test_synthetic.py checks this on tests/data/jena_head.csv):
```
Magnus (DWD constants a=6.1078 hPa, b=17.08085, c=234.175 C):
    VPmax = a exp(b T / (c + T))        VPact = rh/100 VPmax        VPdef = VPmax - VPact
    Tdew  = c x / (b - x),  x = ln(VPact / a)
Tpot = (T + K0) (1000 / p)^0.286       sh = 622 VPact / (p - 0.378 VPact)     H2OC = 1000 VPact / p
rho  = 1000 * 100 ((p - VPact) / (Rd (T + K0)) + VPact / (Rv (T + K0)))       (moist air, g/m**3)
K0 = 273.16, Rd = 287.058, Rv = 461.495 (the real file fits 273.16 better than 273.15)
```
How the base processes are built and where they differ from the real data: docs/data.md.
"""
from __future__ import annotations

import gzip
import io
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from jena_rnn import atomic
from jena_rnn.data.table import JENA_COLUMNS, JENA_TIME_FORMAT, Table

MAGNUS_A, MAGNUS_B, MAGNUS_C = 6.1078, 17.08085, 234.175
K0, R_DRY, R_VAPOUR = 273.16, 287.058, 461.495
ROWS_PER_DAY = 144  # 10-minute rows
SYNTHETIC_VERSION = 2  # bump whenever synthetic_jena changes its output, so stale caches are not reused


def magnus(t):
    """Saturation vapour pressure (mbar) over water at temperature `t` (degC), DWD Magnus constants."""
    return MAGNUS_A * np.exp(MAGNUS_B * t / (MAGNUS_C + t))


def inverse_magnus(e):
    """Dew point (degC) at which the saturation vapour pressure equals `e` (mbar)."""
    x = np.log(e / MAGNUS_A)
    return MAGNUS_C * x / (MAGNUS_B - x)


def derived_columns(p, t, rh) -> dict:
    """Compute the Jena file's derived columns from pressure (mbar), temperature (degC) and rh (%)."""
    vpmax = magnus(t)
    vpact = rh / 100.0 * vpmax
    tk = t + K0
    return {"Tpot (K)": tk * (1000.0 / p) ** 0.286, "Tdew (degC)": inverse_magnus(vpact), "VPmax (mbar)": vpmax,
            "VPact (mbar)": vpact, "VPdef (mbar)": vpmax - vpact, "sh (g/kg)": 622.0 * vpact / (p - 0.378 * vpact),
            "H2OC (mmol/mol)": 1000.0 * vpact / p,
            "rho (g/m**3)": 1e5 * ((p - vpact) / (R_DRY * tk) + vpact / (R_VAPOUR * tk))}


def _exp_filter(x: np.ndarray, tau: float) -> np.ndarray:
    """Causal exponential smoothing ``y_t = sum_k w_k x_{t-k}``, w_k proportional to exp(-k / tau), sum 1.

    This is the AR(1) recursion ``y_t = phi y_{t-1} + (1 - phi) x_t`` (phi = exp(-1/tau)) done as one FFT
    convolution with the impulse response truncated at 10 tau, so it is vectorised.
    """
    kernel = np.exp(-np.arange(int(10 * tau) + 1) / tau)
    size = 1 << int(np.ceil(np.log2(len(x) + len(kernel))))
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(kernel / kernel.sum(), size), size)
    return y[:len(x)]


def _red_noise(rng, n: int, tau: float, order: int = 1) -> np.ndarray:
    """Unit-variance red noise [n]: white noise through `order` exponential filters of time `tau` rows.

    One filter gives an AR(1) / Ornstein-Uhlenbeck process with correlation time `tau`; two give a smoother
    one. A burn-in prefix of 10 tau per filter is dropped so the series starts stationary.
    """
    burn = order * (int(10 * tau) + 1)
    x = rng.standard_normal(n + burn)
    for _ in range(order):
        x = _exp_filter(x, tau)
    impulse = np.zeros(burn)
    impulse[0] = 1.0
    for _ in range(order):
        impulse = _exp_filter(impulse, tau)
    return x[burn:] / np.sqrt(np.sum(impulse**2))  # the stationary std is the impulse response's norm


def _lag(x: np.ndarray, rows: int) -> np.ndarray:
    """Return x shifted `rows` into the past (the first values repeat x[0])."""
    rows = min(rows, len(x))
    return np.concatenate([np.full(rows, x[0]), x[:len(x) - rows]])


def synthetic_jena(n_rows: int = 420_551, seed: int = 0) -> Table:
    """Generate `n_rows` 10-minute rows from 01.01.2009 00:10:00 in the Jena columns (deterministic per seed).

    Values are rounded to 2 decimals like the real file, and the derived columns are computed from the
    rounded p, T and rh. No -9999 sentinels, no duplicated or missing timestamps.
    """
    rng = np.random.default_rng(seed)
    day = ROWS_PER_DAY
    i = np.arange(n_rows)
    days = (i + 1) / day  # days since 01.01.2009 00:00
    hour = (days % 1.0) * 24.0
    season = 0.5 - 0.5 * np.cos(2 * np.pi * (days - 20.0) / 365.25)  # 0 mid-January .. 1 mid-July
    # Pressure: smooth synoptic systems (two filters, ~1.5 days) stronger in winter, plus the 12-h tide.
    pres_anom = (9.0 - 3.0 * season) * _red_noise(rng, n_rows, 1.5 * day, order=2)
    p = 989.2 + pres_anom + 0.4 * np.cos(2 * np.pi * (hour - 10.0) / 12.0)
    # Temperature: season + slow regime + persistent anomaly + advection driven by the pressure tendency.
    tendency = pres_anom - _lag(pres_anom, day)  # mbar per 24 h, known from the past only
    # The air mass arrives about half a day after the pressure change: falling p warms, rising p cools.
    advection = -0.45 * _exp_filter(_lag(tendency, day // 2), 0.75 * day)
    t_anom = ((4.2 - 1.4 * season) * _red_noise(rng, n_rows, 3.5 * day)
              + 1.2 * _red_noise(rng, n_rows, 60.0 * day) + advection)
    cloud = 1.0 / (1.0 + np.exp(-1.5 * _red_noise(rng, n_rows, 1.5 * day) - 0.05 * pres_anom))
    amp = (2.0 + 3.8 * season) * (1.35 - 0.8 * cloud)  # half the daily range, larger on clear summer days
    daily = np.cos(2 * np.pi * (hour - 14.5) / 24.0) + 0.2 * np.cos(4 * np.pi * (hour - 14.5) / 24.0)
    t_mean = 9.4 - 9.2 * np.cos(2 * np.pi * (days - 20.0) / 365.25) + t_anom
    t = t_mean + amp * daily + 0.25 * _red_noise(rng, n_rows, 6.0)
    # Humidity: the air mass keeps its dew point over a day, so rh falls as T rises (capped at saturation).
    depression = 1.0 + 4.0 * (1.0 - cloud) + 2.5 * season + 0.6 * _red_noise(rng, n_rows, 0.5 * day)
    rh = np.clip(100.0 * magnus(t_mean - depression) / magnus(t), 1.0, 100.0)
    # Wind: synoptic vector (westerly mean, stronger in deep lows) plus gusty turbulence.
    storm = 0.7 * (1.0 + 0.04 * np.maximum(-pres_anom, 0.0) + 0.03 * np.abs(tendency))
    turb = (0.6 + 0.5 * (daily > 0)) * storm
    u = storm * (1.0 + 1.3 * _red_noise(rng, n_rows, 0.8 * day)) + turb * _red_noise(rng, n_rows, 3.0)
    v = storm * (0.4 + 1.3 * _red_noise(rng, n_rows, 0.8 * day)) + turb * _red_noise(rng, n_rows, 3.0)
    wv = np.hypot(u, v)
    max_wv = wv * (1.3 + 0.4 * np.abs(rng.standard_normal(n_rows))) + 0.2 * np.abs(rng.standard_normal(n_rows))
    wd = np.degrees(np.arctan2(-u, -v)) % 360.0  # direction the wind blows from (meteorological)

    p, t, rh = np.round(p, 2), np.round(t, 2), np.round(rh, 2)
    cols = {"p (mbar)": p, "T (degC)": t, "rh (%)": rh, **derived_columns(p, t, rh),
            "wv (m/s)": wv, "max. wv (m/s)": max_wv, "wd (deg)": wd}
    values = np.stack([np.round(cols[c], 2) for c in JENA_COLUMNS], axis=1)
    values[:, JENA_COLUMNS.index("wd (deg)")] %= 360.0  # 359.999 rounds to 360.00: wrap to 0
    times = np.datetime64("2009-01-01T00:10:00", "ns") + i * np.timedelta64(10, "m")
    return Table(times.astype("datetime64[ns]"), values.astype(np.float32), JENA_COLUMNS, _report(n_rows, seed))


def _report(n_rows: int, seed: int) -> dict:
    return {"file": None, "rows": n_rows, "source": f"synthetic(seed={seed},rows={n_rows})", "sentinel_counts": {},
            "duplicated_timestamps": 0, "missing_slots": 0, "gaps": 0}


def write_jena_csv(table: Table, path) -> Path:
    """Write `table` in the real file's format: quoted header, dd.mm.yyyy HH:MM:SS dates, 2 decimals.

    A path ending in .gz or .zip is compressed (the zip holds one member named like the path minus .zip).
    """
    path = Path(path)
    header = ",".join(f'"{c}"' for c in ("Date Time",) + tuple(table.columns))
    frame = pd.DataFrame(np.asarray(table.values, np.float64), columns=list(table.columns))
    frame.insert(0, "Date Time", pd.DatetimeIndex(table.times).strftime(JENA_TIME_FORMAT))
    buf = io.StringIO()
    buf.write(header + "\n")
    frame.to_csv(buf, header=False, index=False, float_format="%.2f", lineterminator="\n")
    text = buf.getvalue()
    if path.suffix == ".gz":
        with gzip.open(path, "wt", newline="") as f:
            f.write(text)
    elif path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(path.stem, text)
    else:
        path.write_text(text, newline="")
    return path


def default_table(cache_dir=None, n_rows: int = 420_551, seed: int = 0) -> Table:
    """Return the synthetic default, generated once and cached as .npz (written by ``atomic.writer``).

    The cache directory is `cache_dir`, else ``$JENA_RNN_CACHE``, else ``~/.cache/jena_rnn``.
    """
    root = Path(cache_dir or os.environ.get("JENA_RNN_CACHE") or Path.home() / ".cache" / "jena_rnn")
    file = root / f"synthetic_v{SYNTHETIC_VERSION}_seed{seed}_rows{n_rows}.npz"
    if file.exists():
        try:
            with np.load(file, allow_pickle=False) as z:
                cached = Table(z["times"].astype("datetime64[ns]"), z["values"], tuple(z["columns"].tolist()),
                               _report(n_rows, seed) | {"file": str(file), "cached": True})
            if cached.values.shape != (n_rows, len(JENA_COLUMNS)) or cached.columns != JENA_COLUMNS \
                    or cached.times.shape != (n_rows,) or not np.isfinite(cached.values).all():
                raise ValueError(f"holds {cached.values.shape} values for columns {cached.columns}")
            return cached
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as e:
            # the cache is this project's own file: a damaged one is rebuilt (replaced atomically), never used
            warnings.warn(f"{file}: damaged synthetic-data cache ({type(e).__name__}: {e}); generating it again",
                          stacklevel=2)
    table = synthetic_jena(n_rows, seed)
    with atomic.writer(file) as f:
        np.savez(f, times=table.times.astype(np.int64), values=table.values, columns=np.array(table.columns))
    return table._replace(report=table.report | {"file": str(file), "cached": False})
