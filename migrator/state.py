"""Checkpoint files: atomic snapshots and an append-only journal.

A snapshot (`atomic_write_json`) is written to a temp file in the same directory, fsynced,
renamed over the old one, and the directory fsynced: a reader sees the old or the new file,
never a torn one, whatever instant the writer is killed.

A journal (`Journal`) appends one JSON line per record and fsyncs it, so recording that a chunk
finished is O(1) however many chunks a fleet has. A line cut short by kill -9 is ignored on
replay (its record was never acknowledged); `compact` folds the journal into a snapshot.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import StateError

M = TypeVar("M", bound=BaseModel)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, chunks: Iterable[bytes], *, temp_prefix: str | None = None,
                 before_rename: Callable[[], None] | None = None) -> int:
    """Write `chunks` (streamed: a fleet's journal need not be built in memory) to a temp file in
    the same directory, fsync it, rename it over `path`, fsync the directory. A kill leaves the old
    or the new file, and at most a temp file named temp_prefix* (default ".NAME."). before_rename:
    called between the durable temp file and the rename (crash tests kill the process there).
    Returns the size written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.writelines(chunks)
            fh.flush()
            os.fsync(fh.fileno())
            size = fh.tell()
        if before_rename is not None:
            before_rename()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return size


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, [data])


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path, default: Any = None) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StateError(f"checkpoint file {str(path)!r} is corrupt ({exc}); move it aside or rerun with --restart") from None


class Journal:
    """Append-only JSON-lines file; each append is durable before it returns. One writer."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = None

    def append(self, record: dict[str, Any]) -> None:
        self.append_many([record])

    def append_many(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if self._fh is None:
            self._repair_tail()
            self._fh = open(self.path, "ab")
        data = b"".join(json.dumps(r, sort_keys=True, default=str).encode() + b"\n" for r in records)
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def _repair_tail(self) -> None:
        """Cut a torn last line (writer killed mid-append) so new records start on a line."""
        try:
            with open(self.path, "rb+") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                if size == 0:
                    return
                fh.seek(size - 1)
                if fh.read(1) == b"\n":
                    return
                fh.seek(0)
                data = fh.read()
                fh.truncate(data.rfind(b"\n") + 1)
                fh.flush()
                os.fsync(fh.fileno())
        except FileNotFoundError:
            return

    def replay(self) -> Iterator[dict[str, Any]]:
        """Every complete record in order; a torn final line is skipped."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return
        with fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    return  # torn write: never acknowledged
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise StateError(f"checkpoint journal {str(self.path)!r} has a corrupt line ({exc})") from None

    def tail(self, offset: int = 0, *, head: bytes = b"") -> tuple[list[dict[str, Any]], int, bytes]:
        """The complete records after byte `offset`, the offset after the last of them (a torn
        final line is left for the next call) and the file's first 64 bytes, read from one open
        file: for readers that follow a journal as it grows. `head`: the first bytes of the file
        as the caller last saw it; a file that no longer starts with them was rewritten, and is
        read from its start (then the returned records start with its first line)."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return [], 0, b""
        with fh:
            first = fh.read(64)
            if not head or not first.startswith(head):
                offset = 0
            fh.seek(offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        try:
            records = [json.loads(line) for line in data[:end].splitlines()]
        except json.JSONDecodeError as exc:
            raise StateError(f"checkpoint journal {str(self.path)!r} has a corrupt line ({exc})") from None
        return records, offset + end, first

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the journal with `records` atomically (compaction)."""
        self.close()
        atomic_write_bytes(
            self.path, b"".join(json.dumps(r, sort_keys=True, default=str).encode() + b"\n" for r in records)
        )

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_model(path: str | Path, model: type[M], corrupt: Callable[[str], Exception]) -> M | None:
    """A JSON file as a pydantic model; None when there is no file. A file that is not JSON or
    not that model raises corrupt(why), why naming the first field at fault."""
    try:
        return model.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise corrupt(f"{'.'.join(map(str, first['loc'])) or 'the file'}: {first['msg']}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise corrupt(str(exc)) from None
