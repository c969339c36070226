"""Does recurrent dropout (Gal & Ghahramani: one mask per sequence, 0.2 on inputs and on the state) stop the GRU from overfitting?

Command:  python experiments/gru_dropout.py [--quick] [--data jena_climate_2009_2016.csv] [--out runs/experiments]
Runtime:  about 13 minutes (40 epochs) on a 2-core CPU at the lecture's settings; --quick takes seconds.
Expected: lecture: 0.262, no overfitting in the first 30 epochs.
Settings: the lecture's (lookback 1440, step 6, delay 144, batch 128, RMSprop 1e-3, MAE, 500 steps/epoch).
"""
from jena_rnn.cli import experiment
from jena_rnn.config import lecture_config

CONFIG = lecture_config("gru_dropout")


def main(argv=None):
    return experiment("gru_dropout", CONFIG, argv)


if __name__ == "__main__":
    main()
