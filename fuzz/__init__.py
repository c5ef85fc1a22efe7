"""Differential fuzzer for copy + sync (issue 13): random tables from a value corpus, random
application-shaped transactions on a private MariaDB source, `migrator copy` and `migrator sync`
run as real processes and killed with SIGKILL at random instants, and an oracle that reads every
row on both sides and compares them in the client (independent of `migrator verify`).

    python -m fuzz.soak --minutes 30          # rounds with new seeds (make soak)
    python -m fuzz.soak --seed 7 --transactions 200 --tables 3 --no-kill   # one reproducible round
"""
