"""Print the SHA-1 of every lecture model's lowered CPU training epoch, to compare two checkouts' programs.

    PYTHONPATH=CHECKOUT python benchmarks/lowered_hashes.py     (run once per checkout; seconds)

Equal hashes mean the two checkouts hand XLA the same program (``make_train_epoch(...).lower(...).as_text()``
on a small synthetic series), so any timing difference between them is the machine's noise.
"""
import dataclasses
import hashlib

import jax

from jena_rnn import data
from jena_rnn.config import lecture_config
from jena_rnn.forecast import train

MODELS = ("gru", "lstm", "gru_dropout", "stacked_gru", "reversed_gru", "bidirectional_gru", "mlp")


def main() -> None:
    for name in MODELS:
        cfg = lecture_config(name)
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthetic_rows=20000, train=(0, 10000),
                                                                val=(10001, 15000), test=(15001, None)))
        ds = data.load_dataset(cfg.data)
        state = train.init_state(cfg, jax.random.PRNGKey(0), ds.series.shape[1])
        text = train.make_train_epoch(cfg, ds.train, ds.target_col).lower(state, ds.series).as_text()
        print(name, hashlib.sha1(text.encode()).hexdigest()[:16], len(text))


if __name__ == "__main__":
    main()
