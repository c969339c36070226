"""Can the lecture's LSTM classify reviews? Embedding(10000, 32) -> LSTM(32) -> Dense(1, sigmoid).

Command:  python experiments/imdb_lstm.py [--quick] [--out runs/experiments]
          (real data: jena-rnn imdb --data imdb.npz|aclImdb --out DIR)
Runtime:  about 4 minutes on a 2-core CPU on the synthetic 25,000 + 25,000 review corpus; --quick seconds.
Expected: lecture (real IMDB): best validation accuracy 0.893 in 10 epochs.
Settings: the lecture's (10,000 words, 500 tokens, batch 128, RMSprop 1e-3, binary cross-entropy).
"""
from jena_rnn.cli import experiment


def main(argv=None):
    return experiment("imdb_lstm", None, argv)


if __name__ == "__main__":
    main()
