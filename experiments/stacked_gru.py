"""Does stacking GRU(32, return_sequences) -> GRU(64, relu), both with dropout 0.1 / 0.5, add capacity that helps?

Command:  python experiments/stacked_gru.py [--quick] [--data jena_climate_2009_2016.csv] [--out runs/experiments]
Runtime:  about 40 minutes (40 epochs) on a 2-core CPU at the lecture's settings; --quick takes seconds.
Expected: lecture: 0.263, only marginally better.
Settings: the lecture's (lookback 1440, step 6, delay 144, batch 128, RMSprop 1e-3, MAE, 500 steps/epoch).
"""
from jena_rnn.cli import experiment
from jena_rnn.config import lecture_config

CONFIG = lecture_config("stacked_gru")


def main(argv=None):
    return experiment("stacked_gru", CONFIG, argv)


if __name__ == "__main__":
    main()
