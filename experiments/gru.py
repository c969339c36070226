"""Does a recurrent layer, GRU(32), that sees the window in order beat the baseline?

Command:  python experiments/gru.py [--quick] [--data jena_climate_2009_2016.csv] [--out runs/experiments]
Runtime:  about 7 minutes on a 2-core CPU at the lecture's settings; --quick takes seconds.
Expected: lecture: best val MAE 0.264, then overfitting.
Settings: the lecture's (lookback 1440, step 6, delay 144, batch 128, RMSprop 1e-3, MAE, 500 steps/epoch).
"""
from jena_rnn.cli import experiment
from jena_rnn.config import lecture_config

CONFIG = lecture_config("gru")


def main(argv=None):
    return experiment("gru", CONFIG, argv)


if __name__ == "__main__":
    main()
