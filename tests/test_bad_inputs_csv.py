"""Bad CSV inputs, archives and flags: each is refused with one error naming file, line, column or flag.

Classes of issue 14: (1) unbounded decompression, (2) silent wrong numbers (Jena-like headers, absurd
values, sentinels outside the wind columns, overlapping splits, an ignored --time-format), (4) one clear
line instead of a traceback (damaged archives, non-UTF-8 text, negative flag values).
"""
import bz2
import gzip
import json
import lzma
import zipfile

import numpy as np
import pytest

from jena_rnn.data import archive
from jena_rnn import cli, data
from jena_rnn.config import DataConfig
from jena_files import edit as _edit, jena_lines, write

# --------------------------------------------------------------------------- (1) bounded decompression
def _zeros_csv(n_rows):
    return "a,b\n" + "0,0\n" * n_rows


@pytest.mark.parametrize("kind", ["zip", "gz", "bz2", "xz", "plain"])
def test_a_file_that_inflates_past_the_limit_is_refused(tmp_path, kind):
    text = _zeros_csv(50_000).encode()  # 200 kB of text, far more than the 64 kB limit below
    path = tmp_path / f"big.csv.{kind}" if kind != "plain" else tmp_path / "big.csv"
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("big.csv", text)
    elif kind == "plain":
        path.write_bytes(text)
    else:
        path.write_bytes({"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind](text))
    assert path.stat().st_size < 64_000 or kind == "plain"
    with pytest.raises(ValueError, match=r"big\.csv.*more than the limit of 65536 bytes"):
        data.load_csv(path, time_column=None, max_bytes=65_536)


def test_a_zip_whose_declared_size_lies_is_stopped_while_inflating(tmp_path):
    """The central directory says 10 bytes; the bounded read still stops at the limit."""
    path = tmp_path / "lie.csv.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("lie.csv", _zeros_csv(50_000))
    raw = bytearray(path.read_bytes())
    cd = raw.rfind(b"PK\x01\x02")  # central directory entry: uncompressed size at offset 24
    raw[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"lie\.csv\.zip"):
        archive.read_bytes(path, max_bytes=65_536)


def test_a_zip_of_several_files_is_refused(tmp_path):
    path = tmp_path / "two.csv.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.csv", "a\n1\n")
        z.writestr("b.csv", "a\n1\n")
    with pytest.raises(ValueError, match=r"two\.csv\.zip: a \.zip must hold exactly one file, found 2"):
        data.load_csv(path, time_column=None)


# --------------------------------------------------------------------------- (4) damaged archives, encodings
def _truncated_gz(tmp_path):
    path = write(tmp_path, jena_lines(200), "jena.csv.gz")
    path.write_bytes(path.read_bytes()[:-200])
    return path


def _truncated_zip(tmp_path):
    path = write(tmp_path, jena_lines(200), "jena.csv.zip")
    path.write_bytes(path.read_bytes()[:300])
    return path


def _garbage_zip(tmp_path):
    path = tmp_path / "jena.csv.zip"
    path.write_bytes(b"this is not a zip archive at all\n" * 10)
    return path


def _bad_crc_zip(tmp_path):
    path = tmp_path / "jena.csv.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("jena.csv", "\n".join(jena_lines(50)) + "\n")
    raw = bytearray(path.read_bytes())
    raw[raw.find(b"01.01.2009") + 3] ^= 0x01  # flip one stored byte: the CRC no longer matches
    path.write_bytes(bytes(raw))
    return path


def _garbage_gz(tmp_path):
    path = tmp_path / "jena.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00garbage" * 40)
    return path


def _latin1(tmp_path):
    path = tmp_path / "jena.csv"
    lines = _edit(jena_lines(20), 10, 0, "01.01.2009 K\xf6ln")  # a latin-1 byte on file line 10
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return path


def _folder(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    return tmp_path / "dir.csv"


DAMAGED = {
    "truncated-gz": (_truncated_gz, r"jena\.csv\.gz: damaged or truncated \.gz"),
    "garbage-gz": (_garbage_gz, r"jena\.csv\.gz: damaged or truncated \.gz"),
    "truncated-zip": (_truncated_zip, r"jena\.csv\.zip: not a zip archive, or a damaged or truncated one"),
    "garbage-zip": (_garbage_zip, r"jena\.csv\.zip: not a zip archive"),
    "bad-crc-zip": (_bad_crc_zip, r"jena\.csv\.zip: .*(CRC|damaged)"),
    "latin-1": (_latin1, r"jena\.csv: line 10: not UTF-8 text \(byte b'\\xf6'"),
    "folder": (_folder, r"dir\.csv: is a folder"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_files_get_one_error_naming_the_file(tmp_path, case):
    make, match = DAMAGED[case]
    with pytest.raises(ValueError, match=match):
        data.load_jena(make(tmp_path))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: no such file"):
        data.load_dataset(DataConfig(path=str(tmp_path / "nope.csv")))


@pytest.mark.parametrize("case", ["truncated-gz", "garbage-zip", "latin-1"])
def test_cli_prints_one_line_for_a_damaged_file(tmp_path, capsys, case):
    path = DAMAGED[case][0](tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli.main(["baseline", "--data", str(path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert err.startswith("jena-rnn: error: ") and err.count("\n") == 1 and str(path) in err


# --------------------------------------------------------------------------- (2) Jena-like headers
HEADERS = {
    "missing": (lambda h: h.replace(',"wd (deg)"', ""), r"column 'wd \(deg\)': header is not the Jena header: "
                r"missing columns \['wd \(deg\)'\]"),
    "extra": (lambda h: h + ',"rain (mm)"', r"column 'rain \(mm\)'.*unexpected columns \['rain \(mm\)'\]"),
    "renamed": (lambda h: h.replace('"T (degC)"', '"T (C)"'), r"renamed 'T \(degC\)' -> 'T \(C\)'"),
    "swapped": (lambda h: h.replace('"p (mbar)","T (degC)"', '"T (degC)","p (mbar)"'), r"columns out of order"),
    "unquoted-but-renamed": (lambda h: h.replace('"', "").replace("rh (%)", "humidity"),
                             r"renamed 'rh \(%\)' -> 'humidity'"),
}


@pytest.mark.parametrize("case", list(HEADERS))
def test_a_jena_like_header_must_be_exact(tmp_path, case):
    change, match = HEADERS[case]
    lines = jena_lines(30)
    header = change(lines[0])
    n = header.count(",") - lines[0].count(",")
    body = [ln + ",1.0" * n if n > 0 else ln.rsplit(",", -n)[0] if n < 0 else ln for ln in lines[1:]]
    path = write(tmp_path, [header] + body)
    with pytest.raises(ValueError, match=r"jena\.csv: line 1.*" + match):
        data.load_dataset(DataConfig(path=str(path), lookback=6, step=1, delay=1, batch_size=2,
                                     train=(0, 12), val=(12, 20), test=(20, None)))


def test_a_described_jena_like_file_is_read_as_a_generic_csv(tmp_path):
    """Naming the columns is the user describing the file: the extra column is then theirs to use."""
    lines = jena_lines(40)
    path = write(tmp_path, [lines[0] + ',"rain (mm)"'] + [ln + ",0.0" for ln in lines[1:]])
    cfg = DataConfig(path=str(path), columns=("T (degC)", "rain (mm)"), lookback=6, step=1, delay=1,
                     batch_size=2, train=(0, 20), val=(20, 35), test=(35, None))
    assert data.load_dataset(cfg).columns == ("T (degC)", "rain (mm)")


@pytest.mark.parametrize("header,match", [('"a","b","a"', r"column 'a': column name appears twice"),
                                          ('"a","","b"', r"header field 2 is empty")])
def test_repeated_or_empty_header_names_are_refused(tmp_path, header, match):
    path = tmp_path / "x.csv"
    path.write_text(header + "\n1,2,3\n")
    with pytest.raises(ValueError, match=r"x\.csv: line 1.*" + match):
        data.load_csv(path, time_column=None)


# --------------------------------------------------------------------------- (2) absurd values
VALUES = {
    "1e30-temperature": (8, 2, "1e30", r"line 8, column 'T \(degC\)': value 1e\+30 is "),
    "impossible-temperature": (9, 2, "999.0", r"line 9, column 'T \(degC\)': value 999\.0 is outside the "
                               r"physically possible range \[-80, 60\]"),
    "impossible-humidity": (10, 5, "150.0", r"line 10, column 'rh \(%\)': value 150\.0 is outside"),
    "negative-pressure": (11, 1, "-5.0", r"line 11, column 'p \(mbar\)': value -5\.0 is outside"),
    "huge-wind-direction": (12, 14, "3600.0", r"line 12, column 'wd \(deg\)': value 3600\.0 is outside"),
}


@pytest.mark.parametrize("case", list(VALUES))
def test_absurd_values_are_refused_and_can_be_kept(tmp_path, case):
    line, col, value, match = VALUES[case]
    path = write(tmp_path, _edit(jena_lines(60), line, col, value))
    with pytest.raises(ValueError, match=r"jena\.csv: " + match + r".*--outliers keep"):
        data.load_jena(path)
    kept = data.load_jena(path, outlier_policy="keep")
    assert kept.values[line - 2, col - 1] == np.float32(value)
    assert sum(kept.report["outlier_counts"].values()) == 1


def test_a_generic_csv_with_a_value_that_dwarfs_its_column_is_refused(tmp_path):
    rows = [f"{i % 7 + 0.5 * (i % 3)},{i}" for i in range(100)]
    rows[40] = "1e25,40"
    path = tmp_path / "g.csv"
    path.write_text("x,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"g\.csv: line 42, column 'x': value 1e\+25 is more than 100 times"):
        data.load_csv(path, time_column=None)


def test_the_baseline_cannot_report_zero_after_one_absurd_cell(tmp_path, capsys):
    """The failure that motivated the check: one 1e30 used to make the naive MAE print as 0.0."""
    path = write(tmp_path, _edit(jena_lines(60), 20, 2, "1e30"))
    with pytest.raises(SystemExit):
        cli.main(["baseline", "--data", str(path), "--lookback", "6", "--step", "1", "--delay", "1",
                  "--batch-size", "2", "--splits", "0:20,20:40,40:"])
    assert "line 20, column 'T (degC)': value 1e+30" in capsys.readouterr().err


# --------------------------------------------------------------------------- (2) sentinels
def test_a_sentinel_outside_the_wind_columns_is_refused_not_zeroed(tmp_path):
    path = write(tmp_path, _edit(jena_lines(40), 15, 2, "-9999.0"))
    with pytest.raises(ValueError, match=r"line 15, column 'T \(degC\)': sentinel value -9999.0 in 1 row\(s\) "
                                         r"outside the wind columns.*--sentinel-elsewhere"):
        data.load_jena(path)


def test_a_sentinel_elsewhere_is_interpolated_or_kept_when_asked(tmp_path):
    lines = _edit(jena_lines(40), 15, 2, "-9999.0")
    path = write(tmp_path, lines)
    before, after = (float(lines[i].split(",")[2]) for i in (13, 15))  # file lines 14 and 16
    t = data.load_jena(path, other_sentinel_policy="interpolate")
    assert t.values[13, 1] == pytest.approx((before + after) / 2, abs=1e-4)
    assert t.report["sentinel_counts"] == {"T (degC)": 1}
    kept = data.load_jena(path, other_sentinel_policy="keep")  # kept on purpose: not an outlier either
    assert kept.values[13, 1] == -9999.0


def test_wind_sentinels_are_still_zeroed_by_default_and_counted(tmp_path):
    path = write(tmp_path, _edit(_edit(jena_lines(40), 20, 12, "-9999.0"), 21, 13, "-9999.0"))
    t = data.load_jena(path)
    assert t.values[18, 11] == 0 and t.values[19, 12] == 0
    assert t.report["sentinel_counts"] == {"wv (m/s)": 1, "max. wv (m/s)": 1}


# --------------------------------------------------------------------------- (2) splits, time format
SMALL = dict(lookback=6, step=1, delay=1, batch_size=2)
SPLITS = {
    "val-overlaps-train": ((0, 30), (20, 45), (45, None), r"val split \[20, 45\) overlaps the train split \[0, 30\)"),
    "test-before-val": ((0, 20), (20, 40), (10, None), r"test split \[10, \d+\) starts before the val split"),
    "val-inside-train": ((0, 45), (10, 20), (45, None), r"val split \[10, 20\) overlaps the train split \[0, 45\)"),
}


@pytest.mark.parametrize("case", list(SPLITS))
def test_overlapping_or_out_of_order_splits_are_refused_unless_allowed(tmp_path, case):
    train, val, test, match = SPLITS[case]
    path = write(tmp_path, jena_lines(50))
    cfg = DataConfig(path=str(path), train=train, val=val, test=test, **SMALL)
    with pytest.raises(ValueError, match=match + r".*--allow-overlap"):
        data.load_dataset(cfg)
    assert data.load_dataset(DataConfig(path=str(path), train=train, val=val, test=test, allow_overlap=True,
                                        **SMALL)).train == train


def test_training_targets_may_reach_into_validation_as_in_the_lecture(tmp_path):
    path = write(tmp_path, jena_lines(50))
    ds = data.load_dataset(DataConfig(path=str(path), train=(0, 30), val=(30, 45), test=(45, None), **SMALL))
    assert ds.train == (0, 30) and ds.val == (30, 45)  # the last training target is row 30, in validation


def test_time_format_is_honoured_for_jena_header_files(tmp_path):
    lines = jena_lines(40)
    iso = [lines[0]] + [f"{ln[6:10]}-{ln[3:5]}-{ln[0:2]}T{ln[11:19]}{ln[19:]}" for ln in lines[1:]]
    path = write(tmp_path, iso)
    cfg = DataConfig(path=str(path), train=(0, 20), val=(20, 35), test=(35, None), **SMALL)
    with pytest.raises(ValueError, match=r"line 2, column 'Date Time': unparseable date '2009-01-01T00:10:00' "
                                         r"\(format '%d\.%m\.%Y %H:%M:%S'\)"):
        data.load_dataset(cfg)
    ds = data.load_dataset(DataConfig(path=str(path), time_format="%Y-%m-%dT%H:%M:%S", train=(0, 20),
                                      val=(20, 35), test=(35, None), **SMALL))
    assert ds.times[0] == np.datetime64("2009-01-01T00:10:00")


# --------------------------------------------------------------------------- (4) flags
FLAGS = {
    "negative-lr-exponent": (["train", "--lr", "-1e-3"], "argument --lr: expected a positive learning rate, got '-1e-3'"),
    "zero-lr": (["train", "--lr", "0"], "argument --lr: expected a positive learning rate"),
    "rho-above-one": (["train", "--rho", "1.5"], "argument --rho: expected an RMSprop decay in [0, 1)"),
    "negative-eps": (["train", "--eps", "-1e-7"], "argument --eps: expected an epsilon >= 0, got '-1e-7'"),
    "negative-dropout": (["train", "--recurrent-dropout", "-0.2"], "--recurrent-dropout"),
    "unknown-outlier-policy": (["train", "--outliers", "drop"], "argument --outliers: invalid choice"),
}


@pytest.mark.parametrize("case", list(FLAGS))
def test_bad_flag_values_get_one_line_naming_the_flag(tmp_path, capsys, case):
    argv, expected = FLAGS[case]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv + ["--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and expected in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_cli_overlap_flag_reaches_the_config(tmp_path, capsys):
    path = write(tmp_path, jena_lines(60))
    argv = ["baseline", "--data", str(path), "--lookback", "6", "--step", "1", "--delay", "1", "--batch-size", "2",
            "--splits", "0:30,20:45,45:"]
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert "overlaps the train split" in capsys.readouterr().err
    assert cli.main(argv + ["--allow-overlap"]) == 0
    assert json.loads(capsys.readouterr().out)["val_mae"] > 0


# --------------------------------------------------------------------------- (4) the project's own cache
@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong-shape"])
def test_a_damaged_synthetic_cache_is_rebuilt_with_a_warning(tmp_path, damage):
    from jena_rnn.data import synthetic

    fresh = synthetic.default_table(tmp_path, n_rows=300, seed=1)
    (file,) = tmp_path.glob("synthetic_*.npz")
    if damage == "truncated":
        file.write_bytes(file.read_bytes()[:100])
    elif damage == "garbage":
        file.write_bytes(b"not an npz")
    else:
        np.savez(file, times=np.zeros(3, np.int64), values=np.zeros((3, 14), np.float32),
                 columns=np.array(fresh.columns))
    with pytest.warns(UserWarning, match=r"damaged synthetic-data cache"):
        again = synthetic.default_table(tmp_path, n_rows=300, seed=1)
    np.testing.assert_array_equal(again.values, fresh.values)
    assert synthetic.default_table(tmp_path, n_rows=300, seed=1).report["cached"]  # rebuilt on disk


@pytest.mark.parametrize("flag", ["--time-format", "--time-column"])
def test_date_flags_without_a_data_file_are_refused_not_ignored(tmp_path, capsys, flag):
    with pytest.raises(SystemExit):
        cli.main(["baseline", flag, "%Y"])
    assert f"{flag}: only for a --data file" in capsys.readouterr().err


def test_a_split_that_does_not_fit_names_the_file(tmp_path):
    path = write(tmp_path, jena_lines(20))
    with pytest.raises(ValueError, match=r"jena\.csv: train bounds \(0, 200000\) resolve to \[0, 200000\), which is "
                                         r"not a non-empty range inside the file's 32 rows"):
        data.load_dataset(DataConfig(path=str(path)))


# --------------------------------------------------------------------------- found by a review: archives, dates, flags
def _zip_of(tmp_path, name="jena.csv", payload=None):
    path = tmp_path / "x.csv.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, payload if payload is not None else "\n".join(jena_lines(20)) + "\n")
    return path


def _patch_zip(path, offset_in_header, value, size):
    """Set a field at the same offset of the local header and the central directory entry."""
    raw = bytearray(path.read_bytes())
    local, central = raw.find(b"PK\x03\x04"), raw.rfind(b"PK\x01\x02")
    raw[local + offset_in_header:local + offset_in_header + size] = value.to_bytes(size, "little")
    raw[central + offset_in_header + 2:central + offset_in_header + 2 + size] = value.to_bytes(size, "little")
    path.write_bytes(bytes(raw))
    return path


def _tar_gz(tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        body = ("\n".join(jena_lines(20)) + "\n").encode()
        info = tarfile.TarInfo("jena.csv")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    (tmp_path / "t.csv.gz").write_bytes(buf.getvalue())
    return tmp_path / "t.csv.gz"


ARCHIVES = {
    "encrypted-zip": (lambda t: _patch_zip(_zip_of(t), 6, 0x1, 2), r"x\.csv\.zip: member 'jena\.csv' is encrypted"),
    "unknown-method": (lambda t: _patch_zip(_zip_of(t), 8, 99, 2), r"x\.csv\.zip: unsupported \.zip"),
    "zip-in-zip": (lambda t: _zip_of(t, "inner.csv.zip", b"PK\x03\x04"), r"holds another archive \('inner\.csv\.zip'\)"),
    "tar-gz": (lambda t: _tar_gz(t), r"t\.csv\.gz: line 1: holds NUL bytes: a binary file or an archive"),
}


@pytest.mark.parametrize("case", list(ARCHIVES))
def test_archives_that_are_not_one_plain_csv_get_one_error(tmp_path, case):
    make, match = ARCHIVES[case]
    path = make(tmp_path)
    with pytest.raises(ValueError, match=match) as exc:
        data.load_dataset(DataConfig(path=str(path)))
    assert len(str(exc.value)) < 600  # no kilobyte of tar header in the message


def test_columns_named_twice_are_refused(tmp_path):
    path = write(tmp_path, jena_lines(20))
    with pytest.raises(ValueError, match=r"column 'T \(degC\)': column selected twice"):
        data.load_csv(path, columns=["T (degC)", "T (degC)"], time_format="%d.%m.%Y %H:%M:%S")


def test_without_a_time_format_only_iso_dates_are_read(tmp_path):
    """pandas would guess 02.01.2009 as February 1st and fail only at a day above 12, far down the file."""
    path = write(tmp_path, jena_lines(20))
    with pytest.raises(ValueError, match=r"line 2, column 'Date Time': unparseable date '01\.01\.2009 00:10:00' "
                                         r"\(format None, i\.e\. ISO 8601"):
        data.load_csv(path)


def test_a_bad_time_format_names_the_flag(tmp_path):
    path = write(tmp_path, jena_lines(20))
    with pytest.raises(ValueError, match=r"time format '%Q' is not a valid strptime format \(--time-format\)"):
        data.load_jena(path, time_format="%Q")


CLI_VALUES = {
    "columns-twice": (["--columns", "T (degC),T (degC)"], "--columns: 'T (degC)' is named twice"),
    "columns-empty-item": (["--columns", "T (degC),,p (mbar)"], "--columns: item 2 of"),
    "empty-data": (["--data", ""], "argument --data: expected a path, got an empty string"),
    "empty-time-format": (["--time-format", ""], "argument --time-format: expected a value"),
    "huge-seed": (["--seed", str(2 ** 70)], "argument --seed: expected a seed in"),
}


@pytest.mark.parametrize("case", list(CLI_VALUES))
def test_flag_values_that_would_be_dropped_or_overflow_are_refused(tmp_path, capsys, case):
    extra, expected = CLI_VALUES[case]
    path = write(tmp_path, jena_lines(60))
    argv = ["train", "--out", str(tmp_path / "run"), *(["--data", str(path)] if "--data" not in extra else []),
            *extra]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and expected in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_time_column_none_reaches_the_config():
    args = cli.build_parser().parse_args(["baseline", "--data", "x.csv", "--time-column", "none"])
    assert cli.data_config(args, DataConfig()).time_column is None
