"""Run the command line: ``python -m jena_rnn``."""
from jena_rnn.cli import main

main()
