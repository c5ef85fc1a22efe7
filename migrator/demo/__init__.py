"""`migrator demo`: the e-wallet example fleet migrated end to end on the local sandbox.

Steps (each on the library functions the stage commands use): sandbox (4 MariaDB sources, one
seekdb target; reused when healthy, recreated otherwise), fleet generation (8 shards), plan
(findings shown), schema, copy, sync while a bounded transfer workload runs, verify during the
traffic, cutover, and a summary: write downtime, checksums, and the invariant that the sum of
balances on the target equals the sources'.

Every run starts fresh: shards regenerated, the target's `wallet` database dropped and the demo
work directory (DIR/demo) emptied. Works without a TTY (no live bars, wide tables).

Files: run.py (the steps, in order), sandbox.py, workload.py (fleet, traffic, balances),
syncthread.py (sync in the background), summary.py (tables and the closing summary).
"""

from .run import PLAN_ARGS, run_demo
from .sandbox import target_endpoint
from .summary import DemoResult
from .syncthread import SyncThread
from .workload import DEMO_ACCOUNTS, TRAFFIC_SECONDS, load_example

__all__ = ["DEMO_ACCOUNTS", "PLAN_ARGS", "TRAFFIC_SECONDS", "DemoResult", "SyncThread", "load_example", "run_demo",
           "target_endpoint"]
