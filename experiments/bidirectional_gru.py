"""Does a bidirectional GRU(32), reading both directions, help on this task?

Command:  python experiments/bidirectional_gru.py [--quick] [--data jena_climate_2009_2016.csv] [--out runs/experiments]
Runtime:  about 20 minutes (40 epochs) on a 2-core CPU at the lecture's settings; --quick takes seconds.
Expected: lecture: 0.262, about as good as the GRU.
Settings: the lecture's (lookback 1440, step 6, delay 144, batch 128, RMSprop 1e-3, MAE, 500 steps/epoch).
"""
from jena_rnn.cli import experiment
from jena_rnn.config import lecture_config

CONFIG = lecture_config("bidirectional_gru")


def main(argv=None):
    return experiment("bidirectional_gru", CONFIG, argv)


if __name__ == "__main__":
    main()
