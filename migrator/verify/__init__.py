"""verify stage: chunk checksums computed inside each database, narrowed to rows, with fix SQL.

`verify_plan(plan, workdir, ...) -> VerifyReport` is the library entry point (cutover calls it).
"""

from .compare import verify_plan
from .report import RowDiff, TableResult, VerifyReport

__all__ = ["verify_plan", "VerifyReport", "TableResult", "RowDiff"]
