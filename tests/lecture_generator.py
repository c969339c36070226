"""The lecture's batch generator (Deep Learning with Python 1st ed. section 6.3), rewritten from the slides.

An independent oracle for jena_rnn.data.windows/eval_rows/sample_train_rows: a Python loop over rows,
numpy only, nothing imported from jena_rnn. Kept as in the lecture: ``max_index=None`` means
``len(data) - delay - 1``; chronological batches wrap to ``min_index + lookback`` when
``i + batch_size >= max_index``; the target is ``data[row + delay][1]`` (the temperature column).
"""
import numpy as np


def generator(data, lookback, delay, min_index, max_index, shuffle=False, batch_size=128, step=6,
              rng=None):
    if max_index is None:
        max_index = len(data) - delay - 1
    i = min_index + lookback
    while True:
        if shuffle:
            rows = (rng or np.random).randint(min_index + lookback, max_index, size=batch_size)
        else:
            if i + batch_size >= max_index:
                i = min_index + lookback
            rows = np.arange(i, min(i + batch_size, max_index))
            i += len(rows)
        samples = np.zeros((len(rows), lookback // step, data.shape[-1]))
        targets = np.zeros((len(rows),))
        for j, row in enumerate(rows):
            indices = range(rows[j] - lookback, rows[j], step)
            samples[j] = data[indices]
            targets[j] = data[rows[j] + delay][1]
        yield samples, targets
