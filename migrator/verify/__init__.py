"""verify stage: chunk checksums computed inside each database, narrowed to rows, with fix SQL.

`verify_plan(plan, workdir, VerifyOptions(...)) -> VerifyReport` is the library entry point (cutover calls it).
"""

from .compare import verify_plan
from .contracts import VerifyOptions
from .report import RowDiff, TableResult, VerifyReport

__all__ = ["verify_plan", "VerifyOptions", "VerifyReport", "TableResult", "RowDiff"]
