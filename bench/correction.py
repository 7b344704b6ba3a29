"""Correction: from a correction's approval to every channel the original reached accepted,
against the slowest single channel call (see fanout.py; same topology and options)."""

import sys

from fanout import main

if __name__ == "__main__":
    sys.argv[1:1] = ["--kind", "correction"]
    main()
