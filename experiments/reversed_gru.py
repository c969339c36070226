"""Does order matter? The same GRU(32) fed each window in reversed time order.

Command:  python experiments/reversed_gru.py [--quick] [--data jena_climate_2009_2016.csv] [--out runs/experiments]
Runtime:  about 7 minutes on a 2-core CPU at the lecture's settings; --quick takes seconds.
Expected: lecture: 0.399, far worse than the baseline: recent data matter most.
Settings: the lecture's (lookback 1440, step 6, delay 144, batch 128, RMSprop 1e-3, MAE, 500 steps/epoch).
"""
from jena_rnn.cli import experiment
from jena_rnn.config import lecture_config

CONFIG = lecture_config("reversed_gru")


def main(argv=None):
    return experiment("reversed_gru", CONFIG, argv)


if __name__ == "__main__":
    main()
