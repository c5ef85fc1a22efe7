"""One progress contract for every stage: typed events and the sink that receives them.

A stage emits events to a `Progress` sink (anything with `emit(event)`); the renderers (rich bars,
the progress lines and live files of progress_lines.py, JSON logs, the metrics registry) are sinks.
Events are pydantic models: JSON across process and Dask boundaries (`to_wire` / `model_validate`).
Sync's sources send the wire form itself (SyncWire, a plain dict: building and pickling a model per
batch cost a sync process ~17 us more per message); the coordinator validates each once.

    CopyStarted    where each source's copy starts from: rows estimated, rows and bytes already copied
    CopyProgress   a page (or chunk) of a table committed on the target: rows, bytes
    CopyFinished   the run's CopyResult (in-process only)
    StageWarning   something a user should read, the stage going on
    SyncProgress   one sync source's report: rows applied, checkpoint, caught up, retry, pause, error
    VerifyProgress chunks checksummed so far, of how many, rows compared
    Throttled      a stage waits for a busy server (reason), or no longer (reason None)
    CutoverStep    what cutover is doing now: the step (a fixed name, the metrics label) and a sentence
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from pydantic import BaseModel, ConfigDict

from .sync.contracts import Checkpoint


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        """The JSON form, only the fields this event says (what model_validate reads back)."""
        return self.model_dump(mode="json", exclude_unset=True)


class SyncWire(TypedDict, total=False):
    """SyncProgress on the queue from a sync process to the coordinator (see SyncProgress)."""

    source: str
    rows: dict[str, int]
    checkpoint: dict[str, Any]  # Checkpoint.model_dump(mode="json")
    caught_up: bool
    pending_events: int
    retry: bool
    state: str
    error: str
    exit_code: int
    done: bool


class SyncProgress(Event):
    """What one source's sync tells the coordinator: per applied batch (rows), per checkpoint saved
    or every 2 s of a long pass (checkpoint, caught_up, pending_events), on a retry, a pause
    (state "paused: WHY"/"resumed"/"waiting for copy: ..."), and once at its end (done, error).
    An idle poll's heartbeat carries caught_up alone."""

    source: str
    rows: dict[str, int] | None = None  # insert | update | delete applied by this batch
    checkpoint: Checkpoint | None = None
    caught_up: bool | None = None  # None: this event does not say
    pending_events: int | None = None  # events read, not yet checkpointed
    retry: bool = False
    state: str | None = None
    error: str | None = None
    exit_code: int | None = None
    done: bool = False


class CopyCounts(Event):
    total: int = 0  # rows: the plan's estimate, or what was copied when more
    done: int = 0
    bytes: int = 0


class CopyStarted(Event):
    sources: dict[str, CopyCounts]  # in the plan's order of tables


class CopyProgress(Event):
    source: str
    table: str  # TablePlan.id
    rows: int
    bytes: int


class CopyFinished(Event):
    result: Any = None  # copy.contracts.CopyResult (not sent between processes)


class StageWarning(Event):
    stage: str
    message: str


class VerifyProgress(Event):
    done: int  # chunks checksummed (or given up on) so far
    total: int
    rows: int  # source rows compared


class Throttled(Event):
    stage: str
    reason: str | None = None  # None: no longer throttled


CutoverStepName = Literal["verify before read-only", "read-only", "drain", "verify"]


class CutoverStep(Event):
    step: CutoverStepName
    message: str


ProgressEvent = (CopyStarted | CopyProgress | CopyFinished | StageWarning | SyncProgress | VerifyProgress | Throttled
                 | CutoverStep)


@runtime_checkable
class Progress(Protocol):
    """Where a stage's progress goes. emit is called from the stage's coordinating thread; a sink
    must not raise for a display problem (it would stop the work) and must return quickly."""

    def emit(self, event: Any) -> None: ...


class NoProgress:
    def emit(self, event: Any) -> None:
        pass


class Collect:
    """Keeps every event (tests, library callers that look at them afterwards)."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def emit(self, event: Any) -> None:
        self.events.append(event)


class Fanout:
    """Every event to each sink, in order."""

    def __init__(self, *sinks: Progress | None):
        self.sinks = [s for s in sinks if s is not None]

    def emit(self, event: Any) -> None:
        for s in self.sinks:
            s.emit(event)


class CallbackSink:
    """A plain function as a sink: fn(event)."""

    def __init__(self, fn: Callable[[Any], None]):
        self.fn = fn

    def emit(self, event: Any) -> None:
        self.fn(event)


def as_sink(progress: Progress | Callable[[Any], None] | None) -> Progress:
    """A sink from a sink, a function of one event, or None (events dropped)."""
    if progress is None:
        return NoProgress()
    if hasattr(progress, "emit"):
        return progress  # type: ignore[return-value]
    return CallbackSink(progress)


def throttled_to(sink: Progress, stage: str) -> Callable[[str | None], None]:
    """A Throttle's notify(reason | None) as Throttled events of `stage` to `sink`."""
    return lambda reason: sink.emit(Throttled(stage=stage, reason=reason))
