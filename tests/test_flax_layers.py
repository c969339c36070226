"""jena_rnn.flax layers: rnn.unroll behind nnx Modules (options, dropout streams, eval mode), linen, training."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jena_rnn import data
from jena_rnn import flax as jflax
from jena_rnn.forecast import train
from jena_rnn.nn import rnn
from jena_rnn.nn.spec import LSTMState
from jena_rnn.runtime.state import make_optimizer

from conftest import B, CELL_IDS, CELLS, F, H, T, random_params, step_kwargs
from tiny import TINY_DATA, tiny_config


def _layer(kind, reset_after, seed=0, **kw):
    return jflax.LAYERS[kind].from_params(random_params(kind, seed, F, H, reset_after=reset_after),
                                          **step_kwargs(kind, reset_after), **kw)


def _xs(seed=1, shape=(B, T, F)):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


OPTIONS = {"last": {}, "seq": {"return_sequences": True}, "backwards": {"go_backwards": True, "return_sequences": True},
           "pre": {"padding": "pre"}, "relu": {"activation": "relu", "return_sequences": True}}
# every cell with whole sequences, every option on the lecture's GRU (each case compiles its own scans)
LAYER_CASES = [(*c, "seq") for c in CELLS] + [("gru", False, o) for o in OPTIONS if o != "seq"]
LAYER_IDS = [f"{i}-seq" for i in CELL_IDS] + [f"gru-before-{o}" for o in OPTIONS if o != "seq"]


@pytest.mark.parametrize("kind,reset_after,option", LAYER_CASES, ids=LAYER_IDS)
def test_layer_is_unroll_with_lengths_and_final_carry(kind, reset_after, option):
    options = OPTIONS[option]
    layer, xs, lengths = _layer(kind, reset_after, **options), _xs(), jnp.array([T, 4])
    carry, ys = layer(xs, lengths=lengths, return_carry=True)
    options = {"return_sequences": False, **options}  # the layer's default (Keras's), not unroll's
    final, want = rnn.unroll(kind, layer.cell.to_params(), xs, lengths=lengths, **step_kwargs(kind, reset_after),
                             **options)
    np.testing.assert_allclose(ys, want, rtol=1e-6, atol=1e-6)
    want_carry = (final.c, final.h) if kind == "lstm" else final  # Flax's (c, h) order
    for a, b in zip(jax.tree.leaves(carry), jax.tree.leaves(want_carry)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(layer(xs, lengths=lengths), ys)  # return_carry=False: outputs only
    mask = jnp.arange(T)[None, :] < lengths[:, None]
    if options.get("padding") != "pre":  # a right-padded mask is the same as its lengths
        np.testing.assert_allclose(layer(xs, mask=mask), ys, rtol=1e-6, atol=1e-6)


def test_initial_carry_of_the_lstm_is_c_then_h():
    layer, xs = _layer("lstm", None), _xs()
    c, h = _xs(3, (B, H)), _xs(4, (B, H))
    _, want = rnn.unroll("lstm", layer.cell.to_params(), xs, state=LSTMState(h=h, c=c), return_sequences=False)
    np.testing.assert_allclose(layer(xs, initial_carry=(c, h)), want, rtol=1e-6)
    # rnn.unroll's own state type is taken as it is (a NamedTuple: never read as a (c, h) pair)
    np.testing.assert_allclose(layer(xs, initial_carry=LSTMState(h=h, c=c)), want, rtol=1e-6)
    for bad in (h, (h,), [c, h, h]):
        with pytest.raises(ValueError, match=r"LSTM: initial_carry must be the LSTM's \(c, h\) pair"):
            layer(xs, initial_carry=bad)


def test_dropout_draws_one_mask_pair_per_sequence_from_the_call_key():
    """The SimpleRNN by hand with the masks of rnn.dropout_masks(key): the same masks at every step."""
    layer = _layer("simple_rnn", None, dropout=0.3, recurrent_dropout=0.4, return_sequences=True)
    xs, key, p = _xs(), jax.random.key(9), layer.cell.to_params()
    m_in, m_rec = rnn.dropout_masks(key, B, F, H, 0.3, 0.4)
    h, want = jnp.zeros((B, H)), []
    for t in range(T):
        h = jnp.tanh((xs[:, t] * m_in) @ p["w_x"] + p["b"] + (h * m_rec) @ p["w_h"])
        want.append(h)
    np.testing.assert_allclose(layer(xs, rngs=key), jnp.stack(want, 1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind,reset_after", CELLS, ids=CELL_IDS)
def test_dropout_streams_eval_mode_and_seeds(kind, reset_after):
    xs = _xs()
    plain = _layer(kind, reset_after, return_sequences=True)(xs)

    def dropped(seed):
        return _layer(kind, reset_after, dropout=0.3, recurrent_dropout=0.3, return_sequences=True,
                      rngs=nnx.Rngs(dropout=seed))

    layer = dropped(1)
    first, second = layer(xs), layer(xs)
    assert not np.allclose(first, plain) and not np.allclose(first, second)  # the stream moves on per call
    np.testing.assert_array_equal(dropped(1)(xs), first)  # same seed, same masks
    assert not np.allclose(dropped(2)(xs), first)  # another stream, other masks
    np.testing.assert_array_equal(layer(xs, deterministic=True), plain)
    np.testing.assert_array_equal(nnx.view(layer, deterministic=True)(xs), plain)
    layer.eval()
    assert layer.deterministic and layer.cell.to_params().keys()
    np.testing.assert_array_equal(layer(xs), plain)
    layer.train()
    assert not np.allclose(layer(xs), plain)


def test_dropout_in_training_mode_without_rngs_is_refused():
    layer = _layer("gru", False, dropout=0.2)
    with pytest.raises(ValueError, match=r"GRU: dropout=0.2, recurrent_dropout=0.0 in training mode .*needs rngs"):
        layer(_xs())
    layer.eval()
    layer(_xs())  # no mask, no key needed


@pytest.mark.parametrize("kind,reset_after,merge_mode", [(*c, "concat") for c in CELLS] + [
    ("gru", False, m) for m in ("sum", "ave", "mul")], ids=[f"{i}-concat" for i in CELL_IDS] + ["sum", "ave", "mul"])
def test_bidirectional_is_rnn_bidirectional(kind, reset_after, merge_mode):
    kw = dict(return_sequences=merge_mode == "concat", dropout=0.2, recurrent_dropout=0.1)
    fw, bw = _layer(kind, reset_after, 0, **kw), _layer(kind, reset_after, 5, **kw)
    bi, xs, key, lengths = jflax.Bidirectional(fw, bw, merge_mode=merge_mode), _xs(), jax.random.key(3), jnp.array([T, 3])
    (f_c, b_c), ys = bi(xs, lengths=lengths, rngs=key, return_carry=True)
    params = {"forward": fw.cell.to_params(), "backward": bw.cell.to_params()}
    (f_w, b_w), want = rnn.bidirectional(kind, params, xs, merge_mode=merge_mode, key=key, lengths=lengths, train=True,
                                         **kw, **step_kwargs(kind, reset_after))
    np.testing.assert_allclose(ys, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jax.tree.leaves(b_c)[-1], (b_w.h if kind == "lstm" else b_w), rtol=1e-6)
    bi.eval()
    _, no_drop = rnn.bidirectional(kind, params, xs, merge_mode=merge_mode, lengths=lengths, **kw,
                                   **step_kwargs(kind, reset_after))
    np.testing.assert_array_equal(bi(xs, lengths=lengths), no_drop)


def test_bidirectional_draws_its_backward_layer_and_refuses_mismatches():
    fw = jflax.GRU(F, H, return_sequences=True, rngs=nnx.Rngs(0))
    bi = jflax.Bidirectional(fw, rngs=nnx.Rngs(1))
    assert type(bi.backward_layer) is jflax.GRU and bi.backward_layer.options() == fw.options()
    assert not np.allclose(bi.backward_layer.cell.to_params()["w_x"], fw.cell.to_params()["w_x"])
    assert bi(_xs()).shape == (B, T, 2 * H)
    with pytest.raises(ValueError, match=r"merge_mode must be one of .*got 'max'"):
        jflax.Bidirectional(fw, rngs=nnx.Rngs(1), merge_mode="max")
    with pytest.raises(ValueError, match="backward_layer must match forward_layer"):
        jflax.Bidirectional(fw, jflax.GRU(F, H, rngs=nnx.Rngs(1)))
    with pytest.raises(ValueError, match="forward_layer has go_backwards=True"):
        jflax.Bidirectional(jflax.GRU(F, H, go_backwards=True, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(1))
    with pytest.raises(ValueError, match="pass backward_layer, or rngs"):
        jflax.Bidirectional(fw)


def test_layers_refuse_bad_arguments_naming_them():
    with pytest.raises(ValueError, match=r"GRU: dropout must be a number in \[0, 1\), got 1.0"):
        jflax.GRU(F, H, dropout=1.0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"LSTM: recurrent_dropout must be a number in \[0, 1\), got -0.1"):
        jflax.LSTM(F, H, recurrent_dropout=-0.1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="padding must be 'right' or 'pre', got 'left'"):
        jflax.GRU(F, H, padding="left", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="LSTM: reset_after is the GRU's form"):
        jflax.LSTM(F, H, reset_after=True, rngs=nnx.Rngs(0))
    layer = jflax.SimpleRNN(F, H, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"SimpleRNN: inputs must be \[B, T, F\] \(rank 3\), got shape \(2, 3\)"):
        layer(jnp.zeros((B, F)))
    with pytest.raises(ValueError, match="SimpleRNN: inputs have 4 features, expected in_features=3"):
        layer(jnp.zeros((B, T, 4)))
    with pytest.raises(ValueError, match="Forecaster: cell must be one of"):
        jflax.Forecaster(F, H, cell="rnn", rngs=nnx.Rngs(0))
    for arg in ("return_sequences", "return_carry"):
        with pytest.raises(ValueError, match=f"Forecaster: {arg}=True is not a forecaster's"):
            jflax.Forecaster(F, H, rngs=nnx.Rngs(0), **{arg: True})


def test_forecaster_refuses_a_stack_or_a_wrong_head():
    from jena_rnn.config import LayerConfig, ModelConfig
    from jena_rnn.nn import models

    one = ModelConfig(kind="rnn", layers=(LayerConfig(cell="gru", units=H),))
    params = models.init_model(jax.random.PRNGKey(0), one, F, T)
    xs = _xs()
    np.testing.assert_allclose(jflax.Forecaster.from_params(params)(xs), models.apply_model(one, params, xs),
                               rtol=1e-5, atol=1e-6)
    two = ModelConfig(kind="rnn", layers=(LayerConfig(cell="gru", units=H),
                                          LayerConfig(cell="gru", units=H)))
    with pytest.raises(ValueError, match="Forecaster: params must be a one-layer 'rnn' model dict.*got 2 layers"):
        jflax.Forecaster.from_params(models.init_model(jax.random.PRNGKey(0), two, F, T))
    wide = {**params, "head": {"w": jnp.zeros((H, 2)), "b": jnp.zeros((2,))}}
    with pytest.raises(ValueError, match=r"Forecaster: params' head w must be \[H, 1\]"):
        jflax.Forecaster.from_params(wide)


def test_linen_model_init_apply_and_grad():
    class Model(nn.Module):
        @nn.compact
        def __call__(self, xs, deterministic=True):
            h = jflax.linen.GRU(in_features=F, hidden_features=H, dropout=0.2, name="gru")(
                xs, deterministic=deterministic)
            return nn.Dense(1, name="head")(h)[:, 0]

    model, xs = Model(), _xs()
    variables = model.init(jax.random.key(0), xs)
    gru = variables["params"]["gru"]["cell"]
    assert {k: v.shape for k, v in gru.items()} == {"w_x": (F, 3 * H), "w_h": (H, 3 * H), "b_x": (3 * H,)}
    head = variables["params"]["head"]

    def pure(p, xs, key=None):
        _, h = rnn.unroll("gru", p["gru"]["cell"], xs, return_sequences=False, dropout=0.2, key=key, train=key is not None)
        return h @ p["head"]["kernel"] + p["head"]["bias"]

    np.testing.assert_allclose(model.apply(variables, xs), pure(variables["params"], xs)[:, 0], rtol=1e-5, atol=1e-6)
    assert {"kernel", "bias"} == set(head)
    key = jax.random.key(4)
    loss = lambda p: jnp.sum(model.apply({"params": p}, xs, deterministic=False, rngs={"dropout": key}) ** 2)  # noqa: E731
    got = jax.grad(loss)(variables["params"])
    dropped = model.apply(variables, xs, deterministic=False, rngs={"dropout": key})
    assert not np.allclose(dropped, model.apply(variables, xs))
    np.testing.assert_array_equal(dropped, model.apply(variables, xs, deterministic=False, rngs={"dropout": key}))
    assert all(bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(got))
    # training-mode dropout without a "dropout" rng is refused, as linen's Dropout refuses it (the bridge's own
    # "default" stream would otherwise give one fixed mask on every call)
    with pytest.raises(ValueError, match=r"GRU: dropout=0.2.*linen: apply\(\.\.\., rngs=\{'dropout': key\}\)"):
        model.apply(variables, xs, deterministic=False)


@pytest.fixture(scope="module")
def ds():
    return data.load_dataset(dataclasses.replace(TINY_DATA))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("JENA_RNN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_nnx_training_loop_follows_the_jitted_epoch(ds):
    """nnx.Optimizer + RMSprop (runtime.state.make_optimizer) on the batches fit's epoch draws, same start."""
    config = tiny_config(units=8, steps=4, dropout=0.1, recurrent_dropout=0.2)
    d, (lo, hi) = config.data, ds.train
    state = train.init_state(config, jax.random.PRNGKey(0), ds.series.shape[1])
    done, metrics = train.make_train_epoch(config, ds.train, ds.target_col)(state, ds.series)

    model = jflax.Forecaster.from_params(state.params, cell="gru", dropout=0.1, recurrent_dropout=0.2)
    optimizer = nnx.Optimizer(model, make_optimizer(config.optim), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xs, y, key):
        loss, grads = nnx.value_and_grad(lambda m: train.mae(m(xs, rngs=key), y))(model)
        optimizer.update(model, grads)
        return loss

    phases, key, losses = data.by_phase(ds.series, d.step), state.key, []
    for _ in range(config.train.steps_per_epoch):  # train.make_train_step's draw of rows and dropout key
        key, k_rows, k_drop = jax.random.split(key, 3)
        rows = data.sample_train_rows(k_rows, d.batch_size, lo, hi, lookback=d.lookback, delay=d.delay,
                                      strict=d.strict_targets)
        xs, y = data.windows_by_phase(phases, rows, lookback=d.lookback, step=d.step, delay=d.delay,
                                      target_col=ds.target_col, reverse=d.reverse)
        losses.append(float(step(model, optimizer, xs, y, k_drop)))
    np.testing.assert_allclose(losses, metrics["loss"], rtol=1e-5, atol=1e-6)
    assert losses[-1] != losses[0]
    for (path, got), want in zip(jax.tree_util.tree_leaves_with_path(model.to_params()), jax.tree.leaves(done.params)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=str(path))


def test_the_flax_example_trains(ds, capsys):
    """experiments/flax_gru.py on tiny data: its rows are printed, the training MAE falls, bad counts refused."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "experiments" / "flax_gru.py"
    spec = importlib.util.spec_from_file_location("flax_gru_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    rows = example.main(epochs=2, steps=15, val_batches=2, data_config=TINY_DATA)
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["train_mae"] < rows[0]["train_mae"]
    assert all(np.isfinite(r["val_mae"]) and r["val_mae_degC"] > r["val_mae"] for r in rows)
    assert capsys.readouterr().out.count('"epoch"') == 2
    with pytest.raises(ValueError, match="flax_gru.main: epochs must be a positive integer, got 0"):
        example.main(epochs=0)
