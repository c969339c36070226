"""Loader validation and report, splits, train-only normalisation, windows and samplers vs the lecture."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jena_rnn import data
from jena_rnn.config import DataConfig
from jena_rnn.data.synthetic import JENA_COLUMNS, synthetic_jena
from jena_files import HEAD, HEAD_ROWS, edit as _edit, jena_lines, write
from lecture_generator import generator

def messy_lines():
    """Head + continuation with one -9999.0 in each wind column, a duplicated row and a missing slot."""
    lines = jena_lines()
    fields = lines[19].split(",")  # file line 20
    fields[12] = fields[13] = "-9999.0"  # wv and max. wv (index 0 is the date)
    lines[19] = ",".join(fields)
    lines.insert(30, lines[30])  # duplicated timestamp: file lines 31 and 32
    del lines[40]  # one missing 10-minute slot
    return lines


def test_head_rows_load_exactly():
    table = data.load_jena(HEAD)
    assert table.columns == JENA_COLUMNS and table.values.dtype == np.float32
    expected = np.array([[float(x) for x in r.split(",")[1:]] for r in HEAD_ROWS], np.float32)
    np.testing.assert_array_equal(table.values, expected)
    assert table.times[0] == np.datetime64("2009-01-01T00:10:00")
    assert np.all(np.diff(table.times) == np.timedelta64(10, "m"))
    assert table.report["rows"] == 12 and table.report["missing_slots"] == 0


@pytest.mark.parametrize("name", ["jena.csv", "jena.csv.gz", "jena.csv.zip"])
def test_report_counts_sentinels_duplicates_and_gaps(tmp_path, name):
    lines = messy_lines()
    table = data.load_jena(write(tmp_path, lines, name))
    r = table.report
    assert r["rows"] == len(lines) - 1 == len(table.values)  # nothing dropped silently
    assert r["sentinel_counts"] == {"wv (m/s)": 1, "max. wv (m/s)": 1} and r["sentinel_policy"] == "zero"
    assert (r["duplicated_timestamps"], r["missing_slots"], r["gaps"]) == (1, 1, 1)
    assert r["file"].endswith(name) and r["interval_s"] == 600.0
    assert table.values[18, 11] == 0.0 and table.values[18, 12] == 0.0  # data row 18 = file line 20


def test_sentinel_policies(tmp_path):
    path = write(tmp_path, messy_lines())
    wv = JENA_COLUMNS.index("wv (m/s)")
    kept = data.load_jena(path, sentinel_policy="keep").values
    assert kept[18, wv] == -9999.0
    interp = data.load_jena(path, sentinel_policy="interpolate").values
    np.testing.assert_allclose(interp[18, wv], (kept[17, wv] + kept[19, wv]) / 2, rtol=1e-6)
    with pytest.raises(ValueError, match=r"jena\.csv: line 20, column 'wv \(m/s\)': sentinel"):
        data.load_jena(path, sentinel_policy="error")


def test_drop_duplicates_is_opt_in_and_reported(tmp_path):
    path = write(tmp_path, messy_lines())
    table = data.load_jena(path, drop_duplicates=True)
    assert table.report["dropped_duplicates"] == 1
    assert table.report["rows"] == len(messy_lines()) - 2 == len(table.values)


ERRORS = {
    "missing-column": (lambda ls: [ls[0].replace(',"wd (deg)"', "")] + [ln.rsplit(",", 1)[0] for ln in ls[1:]],
                       r"line 1, column 'wd \(deg\)': header is not the Jena header: missing columns"),
    "extra-column": (lambda ls: [ls[0] + ',"extra"'] + [ln + ",1.0" for ln in ls[1:]],
                     r"line 1, column 'extra': .*unexpected columns"),
    "extra-field": (lambda ls: ls[:6] + [ls[6] + ",3.0"] + ls[7:], r"jena\.csv: line 7: wrong number of fields"),
    "extra-field-first-row": (lambda ls: ls[:1] + [ls[1] + ",3.0"] + ls[2:], r"line 2: wrong number of fields"),
    "missing-field": (lambda ls: ls[:8] + [ls[8].rsplit(",", 1)[0]] + ls[9:],
                      r"line 9, column 'wd \(deg\)': empty or NaN cell"),
    "non-numeric": (lambda ls: _edit(ls, 15, 2, "12,5".replace(",", ";")),
                    r"jena\.csv: line 15, column 'T \(degC\)': non-numeric value '12;5'"),
    "bad-date": (lambda ls: _edit(ls, 11, 0, "2009-01-01 01:50:00"),
                 r"line 11, column 'Date Time': unparseable date '2009-01-01 01:50:00'"),
    "empty-cell": (lambda ls: _edit(ls, 5, 5, ""), r"line 5, column 'rh \(%\)': empty or NaN cell"),
    "nan-cell": (lambda ls: _edit(ls, 6, 1, "NaN"), r"line 6, column 'p \(mbar\)': empty or NaN cell"),
    "inf-cell": (lambda ls: _edit(ls, 7, 12, "inf"), r"line 7, column 'wv \(m/s\)': infinite or out-of-range"),
    "float32-overflow": (lambda ls: _edit(ls, 8, 2, "1e40"), r"line 8, column 'T \(degC\)': infinite or out-of-range"),
    "empty-file": (lambda ls: [], r"jena\.csv: line 1: empty file"),
    "header-only": (lambda ls: ls[:1], r"jena\.csv: line 2: empty file \(header but no data rows\)"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_load_errors_name_file_line_and_column(tmp_path, case):
    mutate, match = ERRORS[case]
    path = write(tmp_path, mutate(jena_lines(20)))
    if case == "empty-file":
        path.write_text("")
    with pytest.raises(ValueError, match=match):
        data.load_jena(path)


def test_load_csv_general(tmp_path):
    path = write(tmp_path, jena_lines(20))
    t = data.load_csv(path, columns=["T (degC)", "p (mbar)"], target="T (degC)", time_format="%d.%m.%Y %H:%M:%S")
    assert t.columns == ("T (degC)", "p (mbar)") and t.values.shape == (32, 2)
    assert t.values[0].tolist() == [np.float32(-8.02), np.float32(996.52)]
    with pytest.raises(ValueError, match=r"line 1, column 'Tx': target is not among the selected columns"):
        data.load_csv(path, columns=["p (mbar)"], target="Tx")
    with pytest.raises(ValueError, match=r"line 1, column 'nope': column not in header"):
        data.load_csv(path, columns=["nope"])
    plain = tmp_path / "plain.csv"
    plain.write_text("a,b\n1,2\n3,4\n")
    t = data.load_csv(plain, time_column=None)
    assert t.times is None and t.values.tolist() == [[1, 2], [3, 4]] and t.report["sentinel_counts"] == {}


def test_resolve_bounds():
    assert data.resolve_bounds(1000, (0, 200), delay=10) == (0, 200)
    assert data.resolve_bounds(1000, (0.5, None), delay=10) == (500, 989)  # lecture: len - delay - 1
    assert data.resolve_bounds(1000, (None, 1.0), delay=10) == (0, 1000)
    for bad in [(300, 200), (0, 1001), (-1, 10), (0, 1.5), ("0", 10)]:
        with pytest.raises(ValueError, match="val bound"):
            data.resolve_bounds(1000, bad, delay=10, name="val")


def test_normalize_uses_train_rows_only():
    values = np.random.default_rng(0).normal(3.0, 2.0, (500, 4)).astype(np.float32)
    normed, stats = data.normalize(values, 0, 300)
    np.testing.assert_allclose(stats.mean, values[:300].mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.std, values[:300].std(0), rtol=1e-5)
    np.testing.assert_allclose(normed, (values - stats.mean) / stats.std, rtol=1e-5, atol=1e-5)
    changed = values.copy()
    changed[400] = 1e6  # a validation row
    assert all(np.array_equal(a, b) for a, b in zip(data.normalize(changed, 0, 300)[1], stats))


SMALL = dict(lookback=60, step=6, delay=12)
EVAL = dict(lookback=60, delay=12)


@pytest.mark.parametrize("lo,hi,bs,steps", [(0, 400, 16, 40), (300, None, 16, 40), (100, 190, 16, 5)],
                         ids=["wraps", "max-index-none", "short-split"])
def test_lecture_eval_matches_generator_batch_for_batch(lo, hi, bs, steps):
    series = np.random.default_rng(1).standard_normal((600, 3)).astype(np.float32)
    gen = generator(series, SMALL["lookback"], SMALL["delay"], lo, hi, batch_size=bs, step=SMALL["step"])
    lo_r, hi_r = data.resolve_bounds(len(series), (lo, hi), delay=SMALL["delay"])
    rows, valid = data.eval_rows(lo_r, hi_r, batch_size=bs, mode="lecture", steps=steps, **EVAL)
    cut = jax.jit(lambda d, r: data.windows(d, r, **SMALL))
    for k in range(steps):
        want_x, want_y = next(gen)
        x, y = cut(jnp.asarray(series), jnp.asarray(rows[k]))
        n = int(valid[k].sum())
        assert n == len(want_y) and valid[k, :n].all()
        np.testing.assert_array_equal(np.asarray(x)[:n], want_x.astype(np.float32))
        np.testing.assert_array_equal(np.asarray(y)[:n], want_y.astype(np.float32))


def test_lecture_default_steps_are_val_steps():
    rows, valid = data.eval_rows(200_001, 300_000, lookback=1440, batch_size=128, mode="lecture")
    assert rows.shape == ((300000 - 200001 - 1440) // 128, 128) and valid.all()
    assert rows[0, 0] == 201_441 and rows[-1, -1] == 201_441 + 769 * 128 - 1


@pytest.mark.parametrize("strict", [False, True])
def test_full_eval_covers_every_end_row_once(strict):
    rows, valid = data.eval_rows(50, 400, batch_size=32, mode="full", strict=strict, **EVAL)
    top = 400 - SMALL["delay"] if strict else 400
    np.testing.assert_array_equal(rows[valid], np.arange(50 + 60, top))
    assert rows.dtype == np.int32 and not valid[-1].all() and rows.min() >= 110 and rows.max() < top
    with pytest.raises(ValueError, match="no end row"):
        data.eval_rows(0, 60, batch_size=4, **EVAL)


def textbook_window(series, i, lookback, step, delay):
    """The lecture's generator for one end row i: rows = range(i - lookback, i, step), target = data[i + delay][1]."""
    indices = range(i - lookback, i, step)
    return np.stack([series[r] for r in indices]), series[i + delay][1]


WINDOW_CASES = [(300, 60, 6, 12), (97, 21, 7, 3), (50, 10, 1, 5), (64, 8, 8, 2), (120, 61, 6, 9)]


@pytest.mark.parametrize("n, lookback, step, delay", WINDOW_CASES,
                         ids=["lecture-like", "odd-sizes", "step-1", "one-step", "lookback-not-multiple"])
def test_every_window_caller_matches_the_textbook_loop(n, lookback, step, delay):
    """The training gather, the evaluation rows and predict's newest window, all vs one Python loop."""
    series = np.random.default_rng(n + lookback).standard_normal((n, 4)).astype(np.float32)
    kw = dict(lookback=lookback, step=step, delay=delay)
    lo, hi = 3, n - delay
    # training: end rows drawn as train_step draws them, cut from the series rearranged once (Phased), jitted
    phased = data.Phased(data.by_phase(jnp.asarray(series), step))

    @jax.jit
    def train_batch(key, phased):
        rows = data.sample_train_rows(key, 256, lo, hi, lookback=lookback, delay=delay)
        return (rows, *data.windows_by_phase(data.phases_of(phased, step), rows, **kw),
                *data.windows(jnp.asarray(series), rows, **kw))

    rows, x, y, x_plain, y_plain = map(np.asarray, train_batch(jax.random.key(n), phased))
    assert set(rows) <= set(range(lo + lookback, hi))  # the generator's randint(min_index + lookback, max_index)
    # evaluation: every end row the split allows, chronologically, as make_evaluate cuts them
    eval_r, valid = data.eval_rows(lo, hi, lookback=lookback, delay=delay, batch_size=16, mode="full")
    assert eval_r[valid].tolist() == list(range(lo + lookback, hi))
    ex, ey = jax.jit(lambda rs: jax.lax.map(  # one batch per scan step, as make_evaluate
        lambda r: data.windows_by_phase(data.phases_of(phased, step), r, **kw), rs))(jnp.asarray(eval_r))
    for got_rows, got_x, got_y in [(rows, x, y), (rows, x_plain, y_plain),
                                   (eval_r[valid], np.asarray(ex)[valid], np.asarray(ey)[valid])]:
        for b, i in enumerate(got_rows):
            want_x, want_y = textbook_window(series, int(i), lookback, step, delay)
            np.testing.assert_array_equal(got_x[b], want_x)
            assert got_y[b] == want_y
    # predict: the newest window is the textbook window of the largest end row whose inputs are in the file
    newest = next(i for i in range(n + lookback, 0, -1) if max(range(i - lookback, i, step)) <= n - 1)
    got = data.newest_window_rows(n, lookback=lookback, step=step)
    assert got.tolist() == list(range(newest - lookback, newest, step)) and got[-1] == n - 1
    if lookback % step == 0:  # DataConfig's rule: then the target lies delay + step rows after the last input
        assert newest + delay - got[-1] == delay + step


def test_windows_equal_slow_loop_and_reverse():
    series = np.random.default_rng(2).standard_normal((300, 5)).astype(np.float32)
    rows = np.array([60, 61, 150, 287])
    x, y = data.windows(jnp.asarray(series), jnp.asarray(rows), target_col=3, **SMALL)
    xr, _ = data.windows(jnp.asarray(series), jnp.asarray(rows), target_col=3, reverse=True, **SMALL)
    for b, r in enumerate(rows):
        want = np.stack([series[i] for i in range(r - 60, r, 6)])
        np.testing.assert_array_equal(x[b], want)
        np.testing.assert_array_equal(xr[b], want[::-1])
        assert y[b] == series[r + 12, 3]
    assert x.shape == (4, 10, 5) and y.shape == (4,)


@pytest.mark.parametrize("n, lookback, step, delay", [(300, 60, 6, 12), (301, 61, 6, 13), (97, 20, 7, 3),
                                                     (50, 10, 1, 5)])
def test_windows_by_phase_equal_windows(n, lookback, step, delay):
    series = jnp.asarray(np.random.default_rng(n).standard_normal((n, 4)).astype(np.float32))
    rows = jnp.asarray(np.arange(lookback, n - delay))  # every valid end row, the extremes included
    phases = data.by_phase(series, step)
    assert phases.shape == (step, -(-n // step), 4)
    kw = dict(lookback=lookback, step=step, delay=delay, target_col=2)
    for reverse in (False, True):
        want, got = data.windows(series, rows, reverse=reverse, **kw), data.windows_by_phase(
            phases, rows, reverse=reverse, **kw)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("strict", [False, True])
def test_train_sampler_stays_inside_bounds(strict):
    draw = jax.jit(lambda k: data.sample_train_rows(k, 4096, 100, 500, lookback=60, delay=12, strict=strict))
    rows = np.concatenate([np.asarray(draw(k)) for k in jax.random.split(jax.random.key(0), 20)])
    top = 488 if strict else 500
    assert rows.dtype == np.int32 and rows.min() == 160 and rows.max() == top - 1
    assert len(np.unique(rows)) == top - 160  # every allowed row is reachable


def test_load_dataset_synthetic_and_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("JENA_RNN_CACHE", str(tmp_path / "cache"))
    cfg = DataConfig(synthetic_rows=3000, lookback=120, delay=24, train=(0, 1500), val=(1500, 2200),
                     test=(2200, None))
    ds = data.load_dataset(cfg)
    assert isinstance(ds.series, jax.Array) and ds.series.shape == (3000, 14) and ds.target_col == 1
    assert (ds.train, ds.val, ds.test) == ((0, 1500), (1500, 2200), (2200, 2975))
    assert ds.source == "synthetic(seed=0,rows=3000)"
    np.testing.assert_allclose(np.asarray(ds.series[:1500]).mean(0), 0, atol=1e-4)
    assert data.target_scale(ds) == pytest.approx(float(ds.stats.std[1]))
    cached = data.default_table(n_rows=3000)  # second call reads the cache
    assert cached.report["cached"] and np.array_equal(cached.values, synthetic_jena(3000).values)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["synthetic_v2_seed0_rows3000.npz"]

    path = write(tmp_path, jena_lines(300))
    ds = data.load_dataset(DataConfig(path=str(path), lookback=60, delay=12, train=(0, 0.5), val=(0.5, 0.75),
                                      test=(0.75, None), columns=("p (mbar)", "T (degC)", "wv (m/s)")))
    assert ds.columns == ("p (mbar)", "T (degC)", "wv (m/s)") and ds.series.shape == (312, 3)
    assert ds.train == (0, 156) and ds.test == (234, 299) and ds.source == str(path)
    with pytest.raises(ValueError, match=r"val split \[156, 200\) of a 312-row file is too short for lookback 60"):
        data.load_dataset(DataConfig(path=str(path), lookback=60, delay=12, train=(0, 156), val=(156, 200)))
    with pytest.raises(ValueError, match=r"train split \[0, 310\) needs target rows up to 321"):
        data.load_dataset(DataConfig(path=str(path), lookback=60, delay=12, train=(0, 310), val=(0, 200)))
    with pytest.raises(ValueError, match="target 'x' is not among the columns"):
        data.load_dataset(DataConfig(path=str(path), lookback=60, delay=12, target="x", val=(0, 200)))


def test_load_dataset_general_csv(tmp_path):
    rows = "\n".join(f"2020-01-01 {h:02d}:00,{h},{2 * h}" for h in range(24))
    path = tmp_path / "other.csv"
    path.write_text("when,a,T (degC)\n" + rows + "\n")
    cfg = DataConfig(path=str(path), time_column="when", time_format="%Y-%m-%d %H:%M", lookback=4, step=2,
                     delay=1, train=(0, 10), val=(10, 16), test=(16, None))
    ds = data.load_dataset(cfg)
    assert ds.columns == ("a", "T (degC)") and ds.target_col == 1 and ds.times[1] == np.datetime64("2020-01-01T01:00")
