"""How does an LSTM(32) compare with the GRU(32) on the same task?

Command:  python experiments/lstm.py [--quick] [--data jena_climate_2009_2016.csv] [--out runs/experiments]
Runtime:  about 8 minutes on a 2-core CPU at the lecture's settings; --quick takes seconds.
Expected: not in the lecture's notebook.
Settings: the lecture's (lookback 1440, step 6, delay 144, batch 128, RMSprop 1e-3, MAE, 500 steps/epoch).
"""
from jena_rnn.cli import experiment
from jena_rnn.config import lecture_config

CONFIG = lecture_config("lstm")


def main(argv=None):
    return experiment("lstm", CONFIG, argv)


if __name__ == "__main__":
    main()
