"""How good is the common-sense forecast 'the temperature in 24 h equals the temperature now'?

Command:  python experiments/baseline_naive.py [--quick] [--data jena_climate_2009_2016.csv] [--out runs/experiments]
Runtime:  seconds on a 2-core CPU at the lecture's settings; --quick takes seconds.
Expected: lecture: MAE 0.29 normalised, 2.57 °C.
Settings: the lecture's (lookback 1440, step 6, delay 144, batch 128, RMSprop 1e-3, MAE, 500 steps/epoch).
"""
from jena_rnn.cli import experiment
from jena_rnn.config import lecture_config

CONFIG = lecture_config("naive")


def main(argv=None):
    return experiment("naive", CONFIG, argv)


if __name__ == "__main__":
    main()
