"""The per-epoch progress bar (drawn by ``rich.progress``) and the clock format of the epoch lines.

An epoch runs as one jitted ``lax.scan``; its body reports the 1-based step through
``jax.debug.callback`` (``forecast.train.make_train_epoch``, ``imdb.classifier.make_train_epoch``), and
that callback is a ``ProgressBar``. Only the drawing is rich's: the bar shows steps done/total, the step
rate, the epoch's ETA and the run's ETA (epochs left x the measured epoch time). ``close`` at the end of
each epoch removes the bar, so the one kept line per epoch is the caller's log line
(``report.epoch_line``). Nothing is drawn unless the console is a terminal: a redirected stderr, a pipe
and the test suite's captured output get the epoch lines only.
"""
from __future__ import annotations

import atexit
import sys
import threading
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["ProgressBar", "clock"]


def clock(seconds: float) -> str:
    """Format a duration as ``m:ss``, or ``h:mm:ss`` from one hour on (rounded to the second)."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


def _stderr_console(stream=None) -> Console:
    """A console on ``stream`` (default stderr) that is a terminal only if that stream is a tty.

    ``isatty`` decides, as the callers' ``progress=sys.stderr.isatty()`` does: rich alone would also
    call a stream a terminal when ``FORCE_COLOR`` is set (as on many CI runners).
    """
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return Console(file=stream, force_terminal=None if isatty is not None and isatty() else False)


class ProgressBar:
    """A progress bar for the running epoch, fed with its 1-based step (a ``jax.debug.callback``).

    Args:
      total: steps per epoch.
      width: the bar's width in characters.
      stream: where to draw (default stderr); ignored when ``console`` is given.
      epochs: the run's last epoch, for the run's ETA (None: no run ETA).
      done: epochs already in the history (a resumed run), so the first bar is epoch ``done + 1``.
      console: a ``rich.console.Console`` to draw on (tests pass one on a ``StringIO``).
    """

    def __init__(self, total: int, width: int = 30, stream=None, *, epochs: int | None = None, done: int = 0,
                 console: Console | None = None):
        self.total, self.width, self.epochs, self.epoch = total, width, epochs, done + 1
        self.console = console if console is not None else _stderr_console(stream)
        self.seconds: list[float] = []  # measured epoch durations, first callback (or last close) to close
        self._lock = threading.Lock()  # the callback may come from a runtime thread
        self._progress = self._task = None
        self._t0 = self._mark = None
        self._step0 = 0
        self._exit_hook = False

    def __call__(self, step) -> None:
        step = int(step)
        if not self.console.is_terminal:
            return
        with self._lock:
            now = time.perf_counter()
            if self._progress is None:
                self._start(now)
            if self._t0 is None:  # the rate counts from the first report on, so the compile is not in it
                self._t0, self._step0 = now, step
            completed = max(step, self._progress.tasks[0].completed)  # callbacks may arrive out of order
            fields = {}
            if completed > self._step0 and now > self._t0:
                rate = (completed - self._step0) / (now - self._t0)
                fields = {"rate": f"{rate:.0f} steps/s", "run": self._run_eta((self.total - completed) / rate, now)}
            self._progress.update(self._task, completed=completed, **fields)

    def _start(self, now: float) -> None:
        if self._mark is None:
            self._mark = now
        columns = (TextColumn(f"epoch {self.epoch}" + (f"/{self.epochs}" if self.epochs else "")),
                   BarColumn(bar_width=self.width), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                   TextColumn("ETA"), TimeRemainingColumn(compact=True), TextColumn("{task.fields[run]}"))
        # transient: close() removes the bar, leaving the caller's epoch line as the one kept line;
        # no redirection: the process's stdout/stderr stay what they are
        self._progress = Progress(*columns, console=self.console, transient=True, redirect_stdout=False,
                                  redirect_stderr=False)
        self._task = self._progress.add_task("train", total=self.total, rate="", run="")
        if not self._exit_hook:  # an epoch stopped by an exception still gives the terminal its cursor back
            atexit.register(self.close)
            self._exit_hook = True
        self._progress.start()

    def _run_eta(self, epoch_left: float, now: float) -> str:
        """``run h:mm:ss``: this epoch's rest plus the later epochs at the measured epoch time."""
        if not self.epochs:
            return ""
        # as epoch_line: the first epoch includes compilation, so later ones estimate when there are any
        # (until one has ended, this epoch's own projected length)
        times = self.seconds[1:] or [now - self._mark + epoch_left]
        return f"run {clock(epoch_left + (self.epochs - self.epoch) * sum(times) / len(times))}"

    def close(self) -> None:
        """End the epoch: remove the bar, record the epoch's duration, and number the next epoch."""
        with self._lock:
            if self._progress is None:
                return
            self._progress.stop()
            now = time.perf_counter()
            self.seconds.append(now - self._mark)
            self._progress = self._task = self._t0 = None
            self._mark, self.epoch = now, self.epoch + 1
