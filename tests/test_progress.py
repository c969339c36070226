"""The per-epoch progress bar (rich): what it draws on a terminal, that it draws nothing elsewhere."""
import io
import re

import jax
import pytest
from rich.console import Console

from jena_rnn.runtime import progress, report

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _terminal():
    buf = io.StringIO()
    return buf, Console(file=buf, force_terminal=True, width=160)


def _feed(bar, steps):
    for i in steps:
        bar(i)
    bar._progress.refresh()  # draw the last state now, not at the next auto-refresh tick


def test_bar_on_a_terminal_shows_steps_rate_and_both_etas():
    buf, console = _terminal()
    bar = progress.ProgressBar(40, epochs=5, done=2, console=console)
    _feed(bar, range(1, 21))
    text = ANSI.sub("", buf.getvalue())
    assert "epoch 3/5" in text  # a resumed run: two epochs done, this is the third
    assert "20/40" in text and re.search(r"\d+ steps/s", text)
    assert re.search(r"ETA \d+:\d\d", text)  # this epoch's
    assert re.search(r"run \d+:\d\d", text)  # the run's: the rest of this epoch plus two more
    bar.close()
    assert bar.epoch == 4 and len(bar.seconds) == 1


def test_run_eta_is_epochs_left_times_the_measured_epoch_time():
    bar = progress.ProgressBar(10, epochs=6, console=_terminal()[1])
    bar.epoch, bar.seconds = 4, [100.0, 20.0, 40.0]  # the first (compiling) epoch is left out: mean 30 s
    assert bar._run_eta(5.0, now=0.0) == f"run {progress.clock(5 + 2 * 30)}"
    assert progress.ProgressBar(10, console=_terminal()[1])._run_eta(5.0, now=0.0) == ""  # no epochs given


def test_close_removes_the_bar_and_the_next_epoch_gets_a_fresh_one():
    buf, console = _terminal()
    bar = progress.ProgressBar(4, epochs=2, console=console)
    _feed(bar, [1, 2, 3, 4])
    bar.close()
    tail = buf.getvalue()[-20:]
    assert "\x1b[2K" in tail  # the transient bar erased its line, for the epoch line to take its place
    _feed(bar, [2, 1])  # a callback arriving late never moves the bar back
    assert "epoch 2/2" in ANSI.sub("", buf.getvalue()) and bar._progress.tasks[0].completed == 2
    bar.close()
    bar.close()  # a second close is harmless


@pytest.mark.parametrize("stream", [io.StringIO(), None], ids=["stringio", "captured-stderr"])
def test_not_a_terminal_draws_nothing(stream, capsys):
    bar = progress.ProgressBar(10, epochs=3, stream=stream)
    for i in range(1, 11):
        bar(i)
    bar.close()
    if stream is not None:
        assert stream.getvalue() == ""
    assert capsys.readouterr() == ("", "")
    assert bar._progress is None and bar.seconds == []


def test_force_color_does_not_make_a_pipe_a_terminal(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # set on many CI runners; rich alone would then draw
    stream = io.StringIO()
    bar = progress.ProgressBar(3, stream=stream)
    bar(1), bar(3), bar.close()
    assert stream.getvalue() == ""


def test_the_bar_is_fed_from_inside_a_jitted_scan():
    buf, console = _terminal()
    bar = progress.ProgressBar(6, epochs=1, console=console)

    def body(c, i):
        jax.debug.callback(bar, i + 1)
        return c + i, None

    jax.block_until_ready(jax.jit(lambda: jax.lax.scan(body, 0, jax.numpy.arange(6)))())
    jax.effects_barrier()
    bar._progress.refresh()
    assert "6/6" in ANSI.sub("", buf.getvalue())
    bar.close()


def test_report_keeps_its_names_and_the_epoch_line_text():
    assert report.ProgressBar is progress.ProgressBar and report._clock(3725) == "1:02:05"
    assert progress.clock(59.6) == "1:00"
    row = {"epoch": 2, "train_mae": 0.25, "val_mae": 0.3, "train_mae_degC": 2.1, "val_mae_degC": 2.5,
           "epoch_seconds": 10.0, "step_ms": 5.0}
    history = [dict(row, epoch=1, epoch_seconds=40.0), row]
    assert report.epoch_line(row, 5, history) == ("epoch   2/5  train MAE 0.2500 (2.100 °C)  val MAE 0.3000 "
                                                  "(2.500 °C)  10.0s (5.0 ms/step)  ETA 0:30")
    # another target's unit; the ETA leaves out each process's compiling epoch (a resume at epoch 3 here)
    rows = [dict(row, epoch=e, epoch_seconds=s, first_in_process=e in (1, 3)) for e, s in ((1, 40.0), (2, 10.0),
                                                                                              (3, 50.0))]
    assert report.epoch_line(rows[-1], 5, rows, unit="mbar").endswith("(2.500 mbar)  50.0s (5.0 ms/step)  ETA 0:20")
