"""Does a small densely connected network (Flatten -> Dense(32, relu) -> Dense(1)) beat the naive forecast?

Command:  python experiments/mlp.py [--quick] [--data jena_climate_2009_2016.csv] [--out runs/experiments]
Runtime:  about 2 minutes on a 2-core CPU at the lecture's settings; --quick takes seconds.
Expected: lecture: best val MAE about 0.30, i.e. it does not beat the baseline.
Settings: the lecture's (lookback 1440, step 6, delay 144, batch 128, RMSprop 1e-3, MAE, 500 steps/epoch).
"""
from jena_rnn.cli import experiment
from jena_rnn.config import lecture_config

CONFIG = lecture_config("mlp")


def main(argv=None):
    return experiment("mlp", CONFIG, argv)


if __name__ == "__main__":
    main()
