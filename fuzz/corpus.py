"""The value corpus: column types and the values an application can write into them, as SQL
literals (extremes, zero and zero-part dates, BINARY values ending in 0x00, latin1 and 4-byte
UTF-8 text, JSON). The same edge values as tests/test_copy_values.py, drawn at random.

Each Kind knows its SQL type, how to draw a literal, whether it may be part of a key, and how
the oracle reads and canonicalizes it (`canon`)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass

from pymysql.converters import escape_string

UTF8_CHARS = list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 _-.,'\"\\%") + [
    "\n", "\t", "\x00", "é", "ü", "ñ", "ß", "中", "文", "€", "😀", "💸", "𝔘", "\u00a0", "Ω"]
LATIN1_CHARS = list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 _-.,'\"\\%") + [
    "\n", "\t", "é", "è", "ç", "à", "Ä", "Ö", "Ü", "ß", "ñ", "¿", "¡", "£", "©", "ÿ", "€"]


# Value families that can be left out (`--exclude`), to look for bugs beneath known ones.
FAMILIES = ("zero-dates", "trailing-zeros", "accents")  # accents: latin1 letters that latin1_swedish_ci and
# utf8mb4_general_ci compare differently ('A'/'Ä', 'u'/'ü', 's'/'ß' are distinct keys on the source only)
EXCLUDED: set[str] = set()


def quote(s: str) -> str:
    return "'" + escape_string(s) + "'"


def hexlit(b: bytes) -> str:
    return f"X'{b.hex()}'" if b else "''"


def text(rnd: random.Random, max_len: int, charset: str = "utf8mb4") -> str:
    pool = LATIN1_CHARS if charset == "latin1" else UTF8_CHARS
    if charset == "latin1" and "accents" in EXCLUDED:
        pool = [ch for ch in pool if ch.isascii()]
    roll = rnd.random()
    if roll < 0.08:
        return ""
    n = rnd.randint(1, max(1, min(max_len, 24 if roll < 0.9 else max_len)))
    s = "".join(rnd.choice(pool) for _ in range(n))
    if rnd.random() < 0.1 and len(s) < max_len:
        s = s[: max_len - 1] + " "  # trailing space (PAD SPACE collations ignore it in comparisons)
    return s


def binary(rnd: random.Random, n: int, fixed: bool) -> bytes:
    roll = rnd.random()
    if roll < 0.1 and "trailing-zeros" not in EXCLUDED:
        return bytes(n) if fixed else b""
    size = n if fixed else rnd.randint(1, n)
    b = bytearray(rnd.getrandbits(8) for _ in range(size))
    if "trailing-zeros" in EXCLUDED:
        b[-1] = b[-1] or 1
    elif roll < 0.55:  # ends in 0x00: BINARY(n) loses these in row images (issue 13 #1)
        zeros = rnd.randint(1, max(1, min(4, size)))
        b[size - zeros:] = bytes(zeros)
    elif roll < 0.65:
        b[0] = 0
    return bytes(b)


def integer(rnd: random.Random, bits: int, unsigned: bool) -> int:
    lo, hi = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if rnd.random() < 0.3:
        return rnd.choice([v for v in (lo, hi, 0, 1, -1) if lo <= v <= hi])
    return rnd.randint(lo, hi)


def decimal(rnd: random.Random, p: int, s: int, unsigned: bool) -> str:
    roll = rnd.random()
    if roll < 0.15:
        ip, fp = "9" * (p - s) or "0", "9" * s
    elif roll < 0.25:
        ip, fp = "0", ("0" * (s - 1) + "1") if s else ""
    else:
        ip = str(rnd.randint(0, 10 ** rnd.randint(0, p - s) - 1)) if p > s else "0"
        fp = "".join(rnd.choice("0123456789") for _ in range(s))
    sign = "-" if not unsigned and rnd.random() < 0.4 else ""
    return sign + ip + ("." + fp if s else "")


def float_lit(rnd: random.Random, single: bool) -> str:
    edges = ([3.4028234e38, -3.4028234e38, 1.1754944e-38, 1.401298e-45, 0.1, 1.0000001, 0.0] if single else
             [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 2.2250738585072014e-308, 0.1,
              1.0000000000000002, 0.0])
    if rnd.random() < 0.25:
        return repr(rnd.choice(edges))
    e = rnd.randint(-37, 37) if single else rnd.randint(-300, 300)
    return repr(rnd.choice((1, -1)) * rnd.uniform(1, 9.999) * 10.0**e)


def date_part(rnd: random.Random, zero_parts: bool = True) -> str:
    roll = rnd.random()
    zero_parts = zero_parts and "zero-dates" not in EXCLUDED
    if zero_parts and roll < 0.08:
        return "0000-00-00"
    if zero_parts and roll < 0.22:  # legal under MariaDB's default sql_mode (issue 13 #2)
        return rnd.choice([f"{rnd.randint(1000, 9999)}-{rnd.randint(1, 12):02d}-00",
                           f"{rnd.randint(1000, 9999)}-00-00", f"{rnd.randint(1000, 9999)}-00-{rnd.randint(1, 28):02d}"])
    if roll < 0.3:
        return rnd.choice(["1000-01-01", "9999-12-31", "2024-02-29", "1970-01-01"])
    return f"{rnd.randint(1000, 9999)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"


def frac(rnd: random.Random, n: int) -> str:
    return "." + "".join(rnd.choice("0123456789") for _ in range(n)) if n else ""


def datetime_lit(rnd: random.Random, n: int) -> str:
    d = date_part(rnd)
    if d == "0000-00-00" and rnd.random() < 0.7:
        return quote("0000-00-00 00:00:00" + ("." + "0" * n if n else ""))
    return quote(f"{d} {rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}{frac(rnd, n)}")


def timestamp_lit(rnd: random.Random, n: int) -> str:
    roll = rnd.random()
    if roll < 0.08 and "zero-dates" not in EXCLUDED:
        return quote("0000-00-00 00:00:00")
    if roll < 0.16:
        return quote(rnd.choice(["1970-01-01 00:00:01", "2038-01-19 03:14:07"]) + frac(rnd, n))
    secs = rnd.randint(1, 2**31 - 2)
    import datetime as _dt

    t = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=secs)  # the workload's session is UTC
    return quote(t.strftime("%Y-%m-%d %H:%M:%S") + frac(rnd, n))


def time_lit(rnd: random.Random, n: int) -> str:
    if rnd.random() < 0.2:
        return quote(rnd.choice(["-838:59:59", "838:59:59", "00:00:00", "-00:00:01"]))
    sign = "-" if rnd.random() < 0.3 else ""
    return quote(f"{sign}{rnd.randint(0, 838)}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}{frac(rnd, n)}")


def json_value(rnd: random.Random, depth: int = 0):
    roll = rnd.random()
    if depth < 3 and roll < 0.25:
        return {text(rnd, 8): json_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}
    if depth < 3 and roll < 0.4:
        return [json_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return rnd.choice([None, True, False, rnd.randint(-2**63, 2**64 - 1), rnd.randint(-100, 100),
                       round(rnd.uniform(-1e6, 1e6), rnd.randint(0, 6)), text(rnd, 20)])


def json_lit(rnd: random.Random) -> str:
    return quote(json.dumps(json_value(rnd), ensure_ascii=rnd.random() < 0.3))


def bit_lit(rnd: random.Random, n: int) -> str:
    v = rnd.choice([0, 2**n - 1, rnd.getrandbits(n)])
    return f"b'{v:b}'"


@dataclass(frozen=True)
class Kind:
    """A column type of the corpus. `draw(rnd, charset)` returns an SQL literal."""

    name: str
    sql: str
    draw: Callable[[random.Random, str], str]
    canon: str  # oracle canonical class: int dec float double bytes text json bit str
    key_ok: bool = False
    textual: bool = False  # takes a CHARACTER SET


def _k(name: str, sql: str, draw: Callable[[random.Random, str], str], canon: str, key_ok: bool = False,
       textual: bool = False) -> Kind:
    return Kind(name, sql, draw, canon, key_ok, textual)


INT_KINDS = [
    _k(f"{t.lower()}{'_u' if u else ''}", f"{t}{' UNSIGNED' if u else ''}",
       (lambda bits, u: lambda r, c: str(integer(r, bits, u)))(bits, u), "int", key_ok=bits >= 16)
    for t, bits in (("TINYINT", 8), ("SMALLINT", 16), ("MEDIUMINT", 24), ("INT", 32), ("BIGINT", 64))
    for u in (False, True)
]

KINDS: dict[str, Kind] = {k.name: k for k in INT_KINDS + [
    _k("dec65", "DECIMAL(65,30)", lambda r, c: decimal(r, 65, 30, False), "dec"),
    _k("dec10u", "DECIMAL(10,2) UNSIGNED", lambda r, c: decimal(r, 10, 2, True), "dec", key_ok=True),
    _k("dec12", "DECIMAL(12,4)", lambda r, c: decimal(r, 12, 4, False), "dec", key_ok=True),
    _k("float", "FLOAT", lambda r, c: float_lit(r, True), "float"),
    _k("double", "DOUBLE", lambda r, c: float_lit(r, False), "double"),
    _k("bin16", "BINARY(16)", lambda r, c: hexlit(binary(r, 16, True)), "bytes", key_ok=True),
    _k("bin4", "BINARY(4)", lambda r, c: hexlit(binary(r, 4, True)), "bytes", key_ok=True),
    _k("varbin", "VARBINARY(40)", lambda r, c: hexlit(binary(r, 40, False)), "bytes", key_ok=True),
    _k("blob", "BLOB", lambda r, c: hexlit(binary(r, r.choice([10, 300, 5000]), False)), "bytes"),
    _k("char", "CHAR(10)", lambda r, c: quote(text(r, 10, c)), "text", key_ok=True, textual=True),
    _k("varchar", "VARCHAR(40)", lambda r, c: quote(text(r, 40, c)), "text", key_ok=True, textual=True),
    _k("text", "TEXT", lambda r, c: quote(text(r, r.choice([30, 400, 3000]), c)), "text", textual=True),
    _k("enum", "ENUM('a','b','c d','é')", lambda r, c: quote(r.choice(["a", "b", "c d", "é"])), "str", key_ok=True),
    _k("set", "SET('x','y','z','w')", lambda r, c: quote(",".join(sorted(r.sample("xyzw", r.randint(0, 4))))), "str"),
    _k("bit1", "BIT(1)", lambda r, c: bit_lit(r, 1), "bit"),
    _k("bit13", "BIT(13)", lambda r, c: bit_lit(r, 13), "bit"),
    _k("bit64", "BIT(64)", lambda r, c: bit_lit(r, 64), "bit"),
    _k("json", "JSON", lambda r, c: json_lit(r), "json"),
    _k("date", "DATE", lambda r, c: quote(date_part(r)), "str", key_ok=True),
    _k("datetime", "DATETIME", lambda r, c: datetime_lit(r, 0), "str", key_ok=True),
    _k("datetime3", "DATETIME(3)", lambda r, c: datetime_lit(r, 3), "str"),
    _k("datetime6", "DATETIME(6)", lambda r, c: datetime_lit(r, 6), "str", key_ok=True),
    _k("timestamp", "TIMESTAMP", lambda r, c: timestamp_lit(r, 0), "str"),
    _k("timestamp6", "TIMESTAMP(6)", lambda r, c: timestamp_lit(r, 6), "str"),
    _k("time", "TIME", lambda r, c: time_lit(r, 0), "str"),
    _k("time6", "TIME(6)", lambda r, c: time_lit(r, 6), "str"),
    _k("year", "YEAR", lambda r, c: str(r.choice([0, 1901, 2155, r.randint(1901, 2155)])), "int"),
]}

KEY_KINDS = [k for k in KINDS.values() if k.key_ok]
