"""The documentation's examples, run as written.

Convention: a fenced ```sh block whose opening fence is directly preceded by the line
`<!-- readme-test -->` (invisible on GitHub) is a test. Each such block runs as one
`bash -euo pipefail` script; every command must succeed (write `cmd || test $? -eq 1` where a
non-zero exit is the point). Blocks of one document run in document order in one fresh temporary
directory (so a later block sees the files an earlier one wrote), with the repository's
`examples/` and `.venv/` linked in, an empty `plans/`, and the venv's `bin` first on PATH (so
`migrator` and `python` are this checkout's). Blocks start and stop their own servers
(`migrator sandbox up/down`); whatever sandbox a block leaves behind is stopped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from migrator.sandbox import Sandbox

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md", REPO / "examples" / "ewallet" / "README.md"]
MARKER = "<!-- readme-test -->"
BLOCK_TIMEOUT = 300


@dataclass
class Block:
    document: Path
    line: int  # 1-based line of the opening fence
    script: str

    @property
    def id(self) -> str:
        first = next((ln for ln in self.script.splitlines() if ln.strip()), "")
        return f"{self.document.relative_to(REPO)}:{self.line}:{first[:40]}"


def tagged_blocks(text: str, document: Path) -> list[Block]:
    """Every ```sh block directly preceded by the marker line."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == MARKER:
            fence = i + 1
            if fence >= len(lines) or not lines[fence].strip().startswith("```sh"):
                raise ValueError(f"{document}:{i + 1}: {MARKER} must be directly followed by a ```sh fence")
            end = fence + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            if end >= len(lines):
                raise ValueError(f"{document}:{fence + 1}: the tagged block is never closed")
            blocks.append(Block(document, fence + 1, "\n".join(lines[fence + 1:end]) + "\n"))
            i = end
        i += 1
    return blocks


def all_blocks() -> list[Block]:
    return [b for doc in DOCUMENTS if doc.exists() for b in tagged_blocks(doc.read_text(), doc)]


BLOCKS = all_blocks()


def test_marker_parsing(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    text = ("intro\n```sh\nnot tested\n```\n" + MARKER + "\n```sh\necho one \\\n  two\nfalse || true\n```\n"
            "```sh\nnot tested either\n```\n")
    blocks = tagged_blocks(text, doc)
    assert [b.script for b in blocks] == ["echo one \\\n  two\nfalse || true\n"]
    assert blocks[0].line == 6
    with pytest.raises(ValueError, match="directly followed"):
        tagged_blocks(MARKER + "\n\n```sh\nx\n```\n", doc)


def test_the_readme_leads_with_a_tested_walk_through_of_every_stage() -> None:
    first = next(b for b in BLOCKS if b.document == REPO / "README.md")
    for stage in ("plan", "schema", "copy", "sync", "verify", "cutover", "status"):
        assert f"migrator {stage} " in first.script, stage


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory: pytest.TempPathFactory):
    """One working directory per document, shared by its blocks in order; sandboxes stopped at the end."""
    dirs: dict[Path, Path] = {}

    def get(document: Path) -> Path:
        if document not in dirs:
            d = tmp_path_factory.mktemp(document.parent.name or "doc")
            (d / "examples").symlink_to(REPO / "examples")
            (d / ".venv").symlink_to(Path(sys.prefix))  # for `. .venv/bin/activate`
            (d / "plans").mkdir()
            dirs[document] = d
        return dirs[document]

    yield get
    for d in dirs.values():
        for sandbox_yaml in d.glob("*/sandbox.yaml"):
            Sandbox(sandbox_yaml.parent).down()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MIGRATOR_TEST_SANDBOX", None)
    env["COLUMNS"] = "160"
    return env


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block(block: Block, workdirs) -> None:
    cwd = workdirs(block.document)
    res = subprocess.run(["bash", "-euo", "pipefail", "-c", block.script], cwd=cwd, env=_env(),
                         capture_output=True, text=True, timeout=BLOCK_TIMEOUT, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, (f"{block.id} exited {res.returncode}\n--- script\n{block.script}"
                                 f"--- stdout (tail)\n{res.stdout[-4000:]}\n--- stderr (tail)\n{res.stderr[-4000:]}")
