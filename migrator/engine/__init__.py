"""The run engine shared by copy, verify (--follow and cutover's re-verify included) and sync
(its retries and locks).

    retry.py      which driver errors are worth retrying, and the one back-off loop
    pool.py       per-instance connection pools with a bound on target connections
    scheduler.py  chunks run under a global and a per-source bound, on threads or Dask workers
    locks.py      file locks: refuse at once, wait with a deadline, or block

This package imports nothing at load time, so db.py can use retry.py without a cycle.
"""
