"""The schema vocabulary every stage shares: a source column as the catalog describes it, and one
change the DDL rewrite made (or refused). The plan file (plan.model) is built from these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["rewrite", "warning", "blocking"]


class Change(BaseModel):
    """One thing the DDL rewrite did (or refused to do), and why."""

    model_config = ConfigDict(extra="forbid")

    rule: str  # stable rule id, e.g. "charset.latin1-to-utf8mb4"
    severity: Severity
    reason: str  # one line a DBA understands
    before: str | None = None
    after: str | None = None


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    data_type: str  # information_schema DATA_TYPE, e.g. "bigint", "varchar"
    column_type: str  # full COLUMN_TYPE, e.g. "bigint(20) unsigned"
    nullable: bool
    charset: str | None = None
    collation: str | None = None
    default: str | None = None
    extra: str = ""
    generated: bool = False  # virtual/stored generated: never written, never compared as data
