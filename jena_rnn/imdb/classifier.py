"""Training the lecture's IMDB classifier (``imdb.model``) on the shared runtime, and its run directory.

Training follows Keras's ``fit(validation_split=0.2)``: the last 20% of the (load_data-shuffled)
training reviews are held out, the rest are reshuffled every epoch and visited once in batches (the
last batch padded with weight-0 rows), one jitted ``lax.scan`` per epoch. The checkpoint with the
best validation accuracy is scored on the test split.
"""
from __future__ import annotations

import hashlib
import json
import functools
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P

from jena_rnn.runtime import checkpoint, distributed, loop, report, rundir
from jena_rnn import backend
from jena_rnn.nn.models import count_params
from jena_rnn.runtime.state import TrainState, make_optimizer
from jena_rnn.imdb.corpus import prepare
from jena_rnn.imdb.model import IMDBConfig, apply_classifier, bce_with_logits, config_dict, correct, init_classifier

Array = jax.Array
HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "train_seconds", "step_ms",
                  "epoch_seconds")


# ---------------------------------------------------------------- jitted epoch and evaluation
def _batches(n: int, batch: int) -> int:
    return -(-n // batch)


def _batch_grads(cfg: IMDBConfig, mesh=None):
    """Return ``(params, x, lengths, y, idx [B], wb [B], key) -> ((loss, logits-based correct), grads)``.

    The loss is the weighted mean BCE of the batch. With a ``"data"`` mesh of n > 1 devices each device
    takes B / n reviews under ``shard_map`` and the weighted sums, counts and gradients are added
    (``psum``), which gives the single-device loss and gradients; dropout masks are the whole batch's
    rows (``dropout_rows``), as in ``train.make_train_step``.
    """
    b, n_dev = cfg.batch_size, distributed.axis_size(mesh, "data")

    def sums(params, x, lengths, y, idx, wb, key, rows):
        def num(p):
            logits = apply_classifier(cfg, p, x[idx], lengths[idx], key=key, train=True, dropout_rows=rows)
            return bce_with_logits(logits, y[idx], wb) * jnp.sum(wb), logits
        (total, logits), grads = jax.value_and_grad(num, has_aux=True)(params)
        return total, correct(logits, y[idx], wb), jnp.sum(wb), grads

    if n_dev == 1:
        local = lambda *a: sums(*a, None)  # noqa: E731
    else:
        distributed.check_divisible(mesh, batch_size=b, members=1)
        local = distributed.data_parallel(lambda *a: sums(*a, distributed.local_rows(b, mesh)), mesh,
                                          (P(), P(), P(), P(), P("data"), P("data"), P()))

    def batch_grads(params, x, lengths, y, idx, wb, key):
        total, right, count, grads = local(params, x, lengths, y, idx, wb, key)
        denom = jnp.maximum(count, 1.0)
        return total / denom, right, count, jax.tree.map(lambda g: g / denom, grads)

    return batch_grads


def make_train_epoch(cfg: IMDBConfig, n: int, *, progress=None, mesh=None):
    """Return jitted ``(state, x [N, T], lengths [N], y [N]) -> (state, {"loss", "acc", "count"} [nb])``.

    One ``lax.scan`` over ``ceil(N / B)`` batches of a fresh permutation (from ``state.key``); the
    indices are padded to a whole batch by wrapping, and the padded rows get weight 0. ``mesh``: a
    ``"data"`` mesh splits every batch over its devices (``_batch_grads``).
    """
    optimizer, b = make_optimizer(cfg.optim), cfg.batch_size
    nb = _batches(n, b)
    batch_grads = _batch_grads(cfg, mesh)

    def train_epoch(state: TrainState, x, lengths, y):
        key, k_perm = jax.random.split(state.key)
        perm = jnp.resize(jax.random.permutation(k_perm, n), (nb, b))
        weights = (jnp.arange(nb * b) < n).astype(jnp.float32).reshape(nb, b)

        def body(st: TrainState, batch):
            i, idx, wb = batch
            k_next, k_drop = jax.random.split(st.key)
            loss, right, count, grads = batch_grads(st.params, x, lengths, y, idx, wb, k_drop)
            updates, opt_state = optimizer.update(grads, st.opt_state, st.params)
            params = optax.apply_updates(st.params, updates)
            if progress is not None:
                jax.debug.callback(progress, i + 1)
            return TrainState(params, opt_state, st.step + 1, k_next), (loss, right, count)

        state = state._replace(key=key)
        state, (loss, right, count) = jax.lax.scan(body, state, (jnp.arange(nb), perm, weights))
        return state, {"loss": loss, "correct": right, "count": count}

    return jax.jit(train_epoch)


def make_evaluate(cfg: IMDBConfig, n: int, batch: int = 512, *, mesh=None):
    """Return jitted ``(params, x [N, T], lengths [N], y [N]) -> (loss, accuracy)`` over all N reviews.

    ``mesh``: a ``"data"`` mesh splits every batch's columns over its devices (sums added by ``psum``).
    """
    nb = _batches(n, batch)

    def sums(params, x, lengths, y, idx, weights):
        def body(carry, batch_):
            ib, wb = batch_
            logits = apply_classifier(cfg, params, x[ib], lengths[ib])
            per = bce_with_logits(logits, y[ib], wb) * jnp.sum(wb)
            return (carry[0] + per, carry[1] + correct(logits, y[ib], wb)), None

        return jax.lax.scan(body, (jnp.zeros(()), jnp.zeros(())), (idx, weights))[0]

    if distributed.axis_size(mesh, "data") > 1:
        distributed.check_divisible(mesh, batch_size=batch, members=1)
        cols = P(None, "data")
        sums = distributed.data_parallel(sums, mesh, (P(), P(), P(), P(), cols, cols))

    def evaluate(params, x, lengths, y):
        idx = jnp.resize(jnp.arange(n), (nb, batch))
        weights = (jnp.arange(nb * batch) < n).astype(jnp.float32).reshape(nb, batch)
        loss, right = sums(params, x, lengths, y, idx, weights)
        return loss / n, right / n

    return jax.jit(evaluate)


# ---------------------------------------------------------------- training loop and run directory
def init_state(cfg: IMDBConfig) -> TrainState:
    """Initialise params and optimiser state from ``cfg.seed``."""
    k_init, k_run = jax.random.split(jax.random.PRNGKey(cfg.seed))
    params = init_classifier(k_init, cfg)
    return TrainState(params, make_optimizer(cfg.optim).init(params), jnp.zeros((), jnp.int32), k_run)


# history.csv and history.png (loss and accuracy, the lecture's two figures)
write_history = functools.partial(report.write_history, fields=HISTORY_FIELDS, plot="history.png",
                                  panels=(("loss", "loss", "binary cross-entropy"), ("acc", "accuracy", "accuracy")),
                                  best_of=("val_acc", False))  # the best checkpoint is the most accurate epoch


def fit(cfg: IMDBConfig, splits: dict, run_dir=None, *, resume: bool = False, log=print,
        progress: bool = False, mesh=None) -> tuple[TrainState, list[dict]]:
    """Train on ``splits["train"]``, validate on ``splits["val"]`` every epoch, checkpoint to ``run_dir``.

    ``mesh``: a ``"data"`` mesh for data-parallel training and validation (the single-device history
    to float rounding, dropout included); None = one device. Under ``jax.distributed`` the mesh may span
    processes: every process runs ``fit`` alike, and process 0 writes the files.

    Returns:
      (state, history): one dict per epoch with the fields of ``HISTORY_FIELDS``.
    Raises:
      FileExistsError: ``run_dir`` holds checkpoints and not ``resume``.   ValueError: resuming a run
      with another configuration.   TrainingDiverged: a non-finite loss.
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    with rundir.lock(run_dir, "imdb"):  # one writer per run directory; released on return and on errors
        return _fit(cfg, splits, run_dir, resume=resume, log=log, progress=progress, mesh=mesh)


def data_fingerprint(splits: dict) -> dict:
    """Identify the prepared training and validation data: review counts and a SHA-256 of their arrays.

    Hashes ``x [N, maxlen]``, ``lengths [N]`` and ``y [N]`` of ``splits["train"]`` and ``splits["val"]``, so
    another corpus, vocabulary, padding or split gives another ``sha256``.
    """
    digest = hashlib.sha256()
    for name in ("train", "val"):
        for a in splits[name]:
            a = np.ascontiguousarray(a)
            digest.update(f"{name}:{a.dtype}:{a.shape};".encode())
            digest.update(a.tobytes())
    return {"train": int(len(splits["train"][2])), "val": int(len(splits["val"][2])), "sha256": digest.hexdigest()}


# how a resume refusal names the fingerprint's fields (``rundir.data_differences``)
FINGERPRINT_LABELS = {"train": "training reviews", "val": "validation reviews", "sha256": "content"}


def _fit(cfg: IMDBConfig, splits: dict, run_dir, *, resume, log, progress, mesh):
    fingerprint = data_fingerprint(splits)

    def check(saved: dict) -> None:
        rundir.check_resume(run_dir, config_now=config_dict(cfg), config_saved=saved, ignore=("epochs",),
                            fingerprint_now=fingerprint, fingerprint_saved=rundir.read_fingerprint(run_dir),
                            where=run_dir / rundir.FINGERPRINT, labels=FINGERPRINT_LABELS, noun="reviews")

    state, history = loop.open_run(run_dir, init_state(cfg), resume=resume, check_config=check)
    if run_dir is not None and not history and distributed.is_main():
        rundir.write_fingerprint(run_dir, fingerprint)
    state, (x, lengths, y), val = distributed.place((state, tuple(splits["train"]), tuple(splits["val"])), mesh,
                                                    stacked=False)
    nb = _batches(len(y), cfg.batch_size)
    bar = report.ProgressBar(nb, epochs=cfg.epochs, done=len(history)) if progress else None
    train_epoch = make_train_epoch(cfg, len(y), progress=bar, mesh=mesh)
    evaluate = make_evaluate(cfg, len(val[2]), mesh=mesh)

    def one_epoch(state):
        t0 = time.perf_counter()
        state, m = train_epoch(state, x, lengths, y)
        m = distributed.to_host(m)  # blocks until the epoch is done
        count = float(np.sum(m["count"]))
        t_train = time.perf_counter() - t0
        val_loss, val_acc = (float(v) for v in distributed.to_host(evaluate(state.params, *val)))
        if bar is not None:
            bar.close()
        return state, {"train_loss": float(np.sum(np.asarray(m["loss"]) * np.asarray(m["count"]))) / count,
                       "train_acc": float(np.sum(m["correct"])) / count, "val_loss": val_loss,
                       "val_acc": val_acc}, t_train

    def line(row: dict, history: list[dict]) -> str:
        return (f"epoch {row['epoch']:3d}/{cfg.epochs}  loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
                f"val loss {row['val_loss']:.4f} val acc {row['val_acc']:.4f}  {row['epoch_seconds']:.1f}s "
                f"({row['step_ms']:.1f} ms/step)")

    return loop.run_epochs(state, history, one_epoch, epochs=cfg.epochs, steps=nb, score="val_acc", minimize=False,
                           finite={"train_loss": "training loss", "val_loss": "validation loss"},
                           run_dir=run_dir, config=config_dict(cfg), write_history=write_history, log=log,
                           line=line)


def run(cfg: IMDBConfig, out, *, resume: bool = False, quiet: bool = False, cache_dir=None,
        mesh="auto") -> dict:
    """Prepare the data, ``fit`` into run directory ``out``, score the best checkpoint on the test split.

    ``mesh``: "auto" (``distributed.auto_mesh(batch_size)``: data parallel over the local devices),
    a ``"data"`` mesh, or None (one device).
    """
    out = Path(out)
    quiet = quiet or not distributed.is_main()  # under jax.distributed, process 0 speaks for all
    log = None if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    if mesh == "auto":
        mesh = distributed.auto_mesh(cfg.batch_size)
    if log and mesh is not None:
        log(f"devices: batch of {cfg.batch_size} split over {distributed.axis_size(mesh, 'data')} "
            f"{backend.name()} devices (data parallel)")
    splits = prepare(cfg, cache_dir=cache_dir, log=log)  # bad data is refused before `out` is created
    with rundir.lock(out, "imdb"):  # before anything is written into out (fit takes it again, re-entrantly)
        return _run(cfg, out, splits, resume=resume, quiet=quiet, mesh=mesh, log=log)


def _run(cfg: IMDBConfig, out: Path, splits: dict, *, resume, quiet, mesh, log) -> dict:
    if log:
        log(f"data: {splits['source']}: train {len(splits['train'][2])}, val {len(splits['val'][2])}, "
            f"test {len(splits['test'][2])} reviews; report {json.dumps(splits['report'])}")
    if distributed.is_main():
        out.mkdir(parents=True, exist_ok=True)
        report.write_json(out / "data_report.json", splits["report"])
        if splits["vocab"] is not None:
            report.write_json(out / "vocab.json", splits["vocab"])
    state, history = fit(cfg, splits, out, resume=resume, log=log, progress=not quiet and sys.stderr.isatty(),
                         mesh=mesh)
    best_state, meta = checkpoint.restore(out, state, which="best")
    params, test = distributed.place((best_state.params, tuple(splits["test"])), mesh, stacked=False)
    test_loss, test_acc = (float(v) for v in distributed.to_host(make_evaluate(cfg, len(test[2]), mesh=mesh)(
        params, *test)))
    best = max(history, key=lambda h: h["val_acc"])
    step_ms, measured = report.warm_step_time(history)
    return {"run_dir": str(out), "source": splits["source"], "params": count_params(state.params),
            "epochs": len(history), "best_epoch": best["epoch"], "best_val_acc": best["val_acc"],
            "test_loss": test_loss, "test_acc": test_acc, "step_ms_median": step_ms, "step_ms_of": measured,
            "epoch_seconds_median": float(np.median([h["epoch_seconds"] for h in report.warm_rows(history)]
                                                    or [history[-1]["epoch_seconds"]])),
            "backend": backend.name(), "devices": distributed.axis_size(mesh, "data")}
