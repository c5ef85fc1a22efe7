"""Row images decoded straight from a rows event's body, one table-specific reader per column.

mysql-replication decodes every value through a chain of generic calls (a type switch, a packet
wrapper read and a bitmap lookup per value): 83% of sync's time went there. Sync already knows
each table's exact column types from the source (signedness, charset, ENUM/SET), so a decoder
built once per table reads a row with one struct call per value from the event's bytes.

It yields exactly what `values.fix_row` makes of the library's output (the library stays the
reference: tests/test_sync_rowdecode.py compares both on every type). Tables with a column type
it does not read (MySQL's binary JSON, geometry, pre-5.6 temporal types), a row image without
every column (binlog_row_image other than FULL) or column metadata that disagrees with the shape
keep the library's path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pymysqlreplication.constants import FIELD_TYPE as FT
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent

from .apply import RowChange
from .values import (EPOCH, ZERO_DATE, TableShape, binary_length, date_value, datetime_value, decode_text, fix_row,
                     prepare_columns)

Reader = Callable[[bytes, int], tuple[Any, int]]

INT_SIZES = {FT.TINY: 1, FT.SHORT: 2, FT.INT24: 3, FT.LONG: 4, FT.LONGLONG: 8}
INT_STRUCTS = {(1, False): "<b", (1, True): "<B", (2, False): "<h", (2, True): "<H", (4, False): "<i",
               (4, True): "<I", (8, False): "<q", (8, True): "<Q"}
# the field types each source data type may arrive as (anything else: the shape is stale)
EXPECTED = {
    "tinyint": {FT.TINY}, "smallint": {FT.SHORT}, "mediumint": {FT.INT24}, "int": {FT.LONG}, "integer": {FT.LONG},
    "bigint": {FT.LONGLONG}, "decimal": {FT.NEWDECIMAL}, "numeric": {FT.NEWDECIMAL}, "float": {FT.FLOAT},
    "double": {FT.DOUBLE}, "real": {FT.DOUBLE}, "char": {FT.STRING}, "binary": {FT.STRING},
    "varchar": {FT.VARCHAR}, "varbinary": {FT.VARCHAR}, "enum": {FT.ENUM}, "set": {FT.SET},
    "tinytext": {FT.BLOB}, "text": {FT.BLOB}, "mediumtext": {FT.BLOB}, "longtext": {FT.BLOB}, "tinyblob": {FT.BLOB},
    "blob": {FT.BLOB}, "mediumblob": {FT.BLOB}, "longblob": {FT.BLOB}, "date": {FT.DATE}, "datetime": {FT.DATETIME2},
    "timestamp": {FT.TIMESTAMP2}, "time": {FT.TIME2}, "year": {FT.YEAR}, "bit": {FT.BIT},
}
DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]  # bytes holding 0..9 leftover decimal digits


def _int_reader(size: int, unsigned: bool) -> Reader:
    if size == 3:
        def read24(buf: bytes, pos: int) -> tuple[int, int]:
            return int.from_bytes(buf[pos:pos + 3], "little", signed=not unsigned), pos + 3
        return read24
    unpack = struct.Struct(INT_STRUCTS[(size, unsigned)]).unpack_from

    def read(buf: bytes, pos: int) -> tuple[int, int]:
        return unpack(buf, pos)[0], pos + size
    return read


def _struct_reader(fmt: str) -> Reader:
    s = struct.Struct(fmt)
    unpack, size = s.unpack_from, s.size

    def read(buf: bytes, pos: int) -> tuple[Any, int]:
        return unpack(buf, pos)[0], pos + size
    return read


def _uint_le_reader(size: int, convert: Callable[[int], Any] = int) -> Reader:
    def read(buf: bytes, pos: int) -> tuple[Any, int]:
        return convert(int.from_bytes(buf[pos:pos + size], "little")), pos + size
    return read


def _bytes_reader(length_size: int, charset: str | None) -> Reader:
    """Length-prefixed bytes, as text in the column's charset (binary columns stay bytes)."""
    def read(buf: bytes, pos: int) -> tuple[Any, int]:
        end = pos + length_size
        n = int.from_bytes(buf[pos:end], "little")
        raw = buf[end:end + n]
        return (decode_text(raw, charset) if charset else raw), end + n
    return read


def _fixed_binary_reader(length_size: int, width: int) -> Reader:
    """BINARY(n): row images drop the value's trailing 0x00 bytes; the column holds all n (a
    shortened key matches no row in a DELETE)."""
    def read(buf: bytes, pos: int) -> tuple[bytes, int]:
        end = pos + length_size
        n = int.from_bytes(buf[pos:end], "little")
        return buf[end:end + n].ljust(width, b"\0"), end + n
    return read


def _decimal_layout(precision: int, scale: int) -> tuple[list[int], list[int], list[int], int, int, int]:
    """Bytes of each integer group (most significant first), bytes and digits of each fraction
    group, the value's size in bytes, its sign bit and all-ones mask."""
    intg = precision - scale
    groups = ([DIG2BYTES[intg % 9]] if intg % 9 else []) + [4] * (intg // 9)
    fgroups = [4] * (scale // 9) + ([DIG2BYTES[scale % 9]] if scale % 9 else [])
    fwidth = [9] * (scale // 9) + ([scale % 9] if scale % 9 else [])
    size = sum(groups) + sum(fgroups)
    return groups, fgroups, fwidth, size, 1 << (8 * size - 1), (1 << (8 * size)) - 1


def _decimal_reader(precision: int, scale: int) -> Reader:
    """MySQL's binary DECIMAL: 9 digits per 4 big-endian bytes, leftovers packed smaller, the
    sign in the first bit, negative values stored inverted. Read as one integer; each group is a
    shift and a mask of it (no per-byte work: DECIMAL columns were a fifth of sync's CPU)."""
    groups, fgroups, fwidth, size, sign_bit, all_ones = _decimal_layout(precision, scale)
    # (shift, mask) of each integer group from the most significant; the fraction's groups as
    # (shift, mask, multiplier) adding up to the fraction's digits as one integer
    shift, int_parts, frac_parts = 8 * size, [], []
    for n in groups:
        shift -= 8 * n
        int_parts.append((shift, (1 << (8 * n)) - 1))
    digits_after = scale
    for n, width in zip(fgroups, fwidth):
        shift -= 8 * n
        digits_after -= width
        frac_parts.append((shift, (1 << (8 * n)) - 1, 10 ** digits_after))
    from_bytes = int.from_bytes

    def read(buf: bytes, pos: int) -> tuple[Decimal, int]:
        v = from_bytes(buf[pos:pos + size], "big")
        negative = not v & sign_bit
        v = (v ^ all_ones ^ sign_bit) if negative else v ^ sign_bit
        whole = 0
        for sh, mask in int_parts:
            whole = whole * 1000000000 + ((v >> sh) & mask)  # a short group only leads
        if frac_parts:
            frac = 0
            for sh, mask, mul in frac_parts:
                frac += ((v >> sh) & mask) * mul
            text = f"{'-' if negative else ''}{whole}.{frac:0{scale}d}"
        else:
            text = f"-{whole}" if negative else str(whole)
        return Decimal(text), pos + size
    return read


def _fraction(fsp: int) -> tuple[int, int, int]:
    """Bytes of a temporal fraction, the divisor for odd precisions, the microsecond multiplier."""
    return (fsp + 1) // 2, 10 if fsp % 2 else 1, 10 ** (6 - fsp)


def _datetime_reader(fsp: int) -> Reader:
    nfrac, div, mul = _fraction(fsp)

    width, frac_bits, frac_mask = 5 + nfrac, 8 * nfrac, (1 << (8 * nfrac)) - 1

    def read(buf: bytes, pos: int) -> tuple[Any, int]:
        packed = int.from_bytes(buf[pos:pos + width], "big")  # the 40 bits, then the fraction: one read
        us = ((packed & frac_mask) // div) * mul if nfrac else 0
        return datetime_value(packed >> frac_bits, us), pos + width
    return read


def _timestamp_reader(fsp: int) -> Reader:
    nfrac, div, mul = _fraction(fsp)

    def read(buf: bytes, pos: int) -> tuple[Any, int]:
        seconds = int.from_bytes(buf[pos:pos + 4], "big")
        us = (int.from_bytes(buf[pos + 4:pos + 4 + nfrac], "big") // div) * mul if nfrac else 0
        value = ZERO_DATE["timestamp"] if seconds == 0 and us == 0 else EPOCH + timedelta(seconds=seconds, microseconds=us)
        return value, pos + 4 + nfrac
    return read


def _time_reader(fsp: int) -> Reader:
    """TIME2: the packed value (hh:mm:ss in 24 bits, then the fraction), offset to stay unsigned."""
    nfrac = (fsp + 1) // 2
    width = 3 + nfrac
    offset = 1 << (8 * width - 1)

    def read(buf: bytes, pos: int) -> tuple[timedelta, int]:
        packed = int.from_bytes(buf[pos:pos + width], "big") - offset
        negative = packed < 0
        packed = -packed if negative else packed
        hms, frac = packed >> (8 * nfrac), packed & ((1 << (8 * nfrac)) - 1)
        us = frac * 10 ** (6 - 2 * nfrac) if nfrac else 0
        value = timedelta(hours=(hms >> 12) & 0x3FF, minutes=(hms >> 6) & 63, seconds=hms & 63, microseconds=us)
        return (-value if negative else value), pos + width
    return read


def _date_reader(buf: bytes, pos: int) -> tuple[Any, int]:
    return date_value(int.from_bytes(buf[pos:pos + 3], "little")), pos + 3


def _year_reader(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    return (1900 + b if b else 0), pos + 1


def _bit_reader(nbytes: int) -> Reader:
    def read(buf: bytes, pos: int) -> tuple[int, int]:
        return int.from_bytes(buf[pos:pos + nbytes], "big"), pos + nbytes
    return read


def _set_value(mask: int) -> Any:
    return mask if mask else ""


def column_reader(lib: Any, data_type: str, column_type: str, charset: str | None) -> Reader | None:
    """The reader for one column, or None when this decoder does not read it."""
    t = lib.type
    if t not in EXPECTED.get(data_type, ()):
        return None
    if t in INT_SIZES:
        return _int_reader(INT_SIZES[t], "unsigned" in column_type.lower())
    if t == FT.FLOAT:
        return _struct_reader("<f")
    if t == FT.DOUBLE:
        return _struct_reader("<d")
    if t == FT.NEWDECIMAL:
        return _decimal_reader(lib.precision, lib.decimals)
    binary = data_type in ("binary", "varbinary") or data_type.endswith("blob")
    text_charset = None if binary else charset
    if t == FT.STRING and data_type == "binary":
        return _fixed_binary_reader(2 if lib.max_length > 255 else 1, binary_length(column_type, lib.max_length))
    if t in (FT.VARCHAR, FT.STRING):
        return _bytes_reader(2 if lib.max_length > 255 else 1, text_charset)
    if t == FT.BLOB:
        return _bytes_reader(lib.length_size, text_charset)
    if t == FT.ENUM:
        return _uint_le_reader(lib.size)
    if t == FT.SET:
        return _uint_le_reader(lib.size, _set_value)
    if t == FT.DATETIME2:
        return _datetime_reader(lib.fsp)
    if t == FT.TIMESTAMP2:
        return _timestamp_reader(lib.fsp)
    if t == FT.TIME2:
        return _time_reader(lib.fsp)
    if t == FT.DATE:
        return _date_reader
    if t == FT.YEAR:
        return _year_reader
    if t == FT.BIT:
        return _bit_reader(lib.bytes)
    return None


STRUCT_CODES = {(1, False): "b", (1, True): "B", (2, False): "h", (2, True): "H", (4, False): "i", (4, True): "I",
                (8, False): "q", (8, True): "Q"}
UTF8 = {"utf8mb4", "utf8mb3", "utf8"}


def _fixed_struct_code(lib: Any, col: Any) -> str | None:
    """The struct code of a fixed-width little-endian column (integers but MEDIUMINT, FLOAT,
    DOUBLE): consecutive ones are read with one unpack."""
    t = lib.type
    if t not in EXPECTED.get(col.data_type, ()):
        return None
    if t in INT_SIZES and INT_SIZES[t] != 3:
        return STRUCT_CODES[(INT_SIZES[t], "unsigned" in col.column_type.lower())]
    return {FT.FLOAT: "f", FT.DOUBLE: "d"}.get(t)


def _decimal_code(v: str, precision: int, scale: int) -> list[str]:
    """_decimal_reader's arithmetic with its constants written in: no call, no loop per value."""
    groups, fgroups, fwidth, size, sign_bit, all_ones = _decimal_layout(precision, scale)
    shift, whole, frac = 8 * size, "0", []
    for n in groups:
        shift -= 8 * n
        whole = f"({whole}*1000000000+((x>>{shift})&{(1 << (8 * n)) - 1}))" if whole != "0" else f"((x>>{shift})&{(1 << (8 * n)) - 1})"
    digits_after = scale
    for n, width in zip(fgroups, fwidth):
        shift -= 8 * n
        digits_after -= width
        frac.append(f"((x>>{shift})&{(1 << (8 * n)) - 1})*{10 ** digits_after}")
    text = f'f"{{sg}}{{{whole}}}.{{{"+".join(frac)}:0{scale}d}}"' if frac else f'f"{{sg}}{{{whole}}}"'
    return [f"x = from_bytes(buf[pos:pos+{size}], 'big'); pos += {size}",
            f"if x & {sign_bit}: x ^= {sign_bit}; sg = ''",
            f"else: x ^= {all_ones ^ sign_bit}; sg = '-'",
            f"{v} = Decimal({text})"]


def _datetime_code(v: str, fsp: int) -> list[str]:
    nfrac, div, mul = _fraction(fsp)
    width = 5 + nfrac
    lines = [f"x = from_bytes(buf[pos:pos+{width}], 'big'); pos += {width}"]
    if nfrac:
        lines.append(f"us = ((x & {(1 << (8 * nfrac)) - 1}) // {div}) * {mul}; x >>= {8 * nfrac}")
    else:
        lines.append("us = 0")
    lines += ["ym = (x >> 22) & 131071",
              f"try: {v} = datetime(ym // 13, ym % 13, (x >> 17) & 31, (x >> 12) & 31, (x >> 6) & 63, x & 63, us)",
              f"except ValueError: {v} = datetime_value(x, us)"]
    return lines


def _bytes_code(v: str, length_size: int, charset: str | None, width: int | None) -> list[str]:
    """A length-prefixed value: text in the column's charset, bytes for binary (BINARY(n) padded)."""
    if length_size == 1:
        lines = ["n = buf[pos]; pos += 1"]
    elif length_size == 2:
        lines = ["n = buf[pos] | (buf[pos+1] << 8); pos += 2"]
    else:
        lines = [f"n = from_bytes(buf[pos:pos+{length_size}], 'little'); pos += {length_size}"]
    if width is not None:
        lines.append(f"{v} = buf[pos:pos+n].ljust({width}, b'\\0'); pos += n")
    elif charset is None:
        lines.append(f"{v} = buf[pos:pos+n]; pos += n")
    elif charset in UTF8:  # what decode_text does for them, without the call
        lines.append(f"{v} = buf[pos:pos+n].decode('utf-8'); pos += n")
    else:
        lines.append(f"{v} = decode_text(buf[pos:pos+n], {charset!r}); pos += n")
    return lines


def _column_code(v: str, lib: Any, col: Any) -> list[str] | None:
    """Inline code reading one value into `v` (None: call the column's reader)."""
    t = lib.type
    if t not in EXPECTED.get(col.data_type, ()):
        return None
    data_type = col.data_type
    if t == FT.INT24:
        signed = "unsigned" not in col.column_type.lower()
        return [f"{v} = from_bytes(buf[pos:pos+3], 'little', signed={signed}); pos += 3"]
    if t == FT.NEWDECIMAL:
        return _decimal_code(v, lib.precision, lib.decimals)
    if t == FT.DATETIME2:
        return _datetime_code(v, lib.fsp)
    binary = data_type in ("binary", "varbinary") or data_type.endswith("blob")
    charset = None if binary else col.charset
    if t == FT.STRING and data_type == "binary":
        return _bytes_code(v, 2 if lib.max_length > 255 else 1, None, binary_length(col.column_type, lib.max_length))
    if t in (FT.VARCHAR, FT.STRING):
        return _bytes_code(v, 2 if lib.max_length > 255 else 1, charset, None)
    if t == FT.BLOB:
        return _bytes_code(v, lib.length_size, charset, None)
    return None


def _skip_code(lib: Any, col: Any) -> list[str] | None:
    """Inline code stepping over one value without making it (None: read it and drop it)."""
    t = lib.type
    if t not in EXPECTED.get(col.data_type, ()):
        return None
    if t == FT.INT24:
        return ["pos += 3"]
    if t == FT.NEWDECIMAL:
        return [f"pos += {_decimal_layout(lib.precision, lib.decimals)[3]}"]
    if t == FT.DATETIME2:
        return [f"pos += {5 + (lib.fsp + 1) // 2}"]
    if t == FT.TIMESTAMP2:
        return [f"pos += {4 + (lib.fsp + 1) // 2}"]
    if t == FT.TIME2:
        return [f"pos += {3 + (lib.fsp + 1) // 2}"]
    if t in (FT.VARCHAR, FT.STRING):
        return ["pos += buf[pos] + 1"] if lib.max_length <= 255 else ["pos += (buf[pos] | (buf[pos+1] << 8)) + 2"]
    if t == FT.BLOB:
        return [f"pos += from_bytes(buf[pos:pos+{lib.length_size}], 'little') + {lib.length_size}"]
    return None


def compile_image(names: list[str], readers: list[Reader], lib_columns: list[Any], columns: list[Any],
                  fallback: Callable[[bytes, int, int], tuple[dict[str, Any], int]],
                  wanted: frozenset[str] | None = None) -> Callable[[bytes, int], tuple[dict[str, Any], int]]:
    """One table's row image reader as one generated function: every column read inline in
    order (consecutive fixed-width NOT NULL columns by one struct unpack), NULLs tested only on
    the columns that allow them, the dict built at once. A row with a NULL where the shape says
    NOT NULL goes to `fallback` (the per-column loop) rather than being misread. `wanted`: only
    these columns are made into values and returned, the others stepped over (an update's or a
    delete's before-image, where only the key is read; the fallback still returns them all)."""
    null_bytes = (len(names) + 7) // 8
    env: dict[str, Any] = {"from_bytes": int.from_bytes, "Decimal": Decimal, "datetime": __import__("datetime").datetime,
                           "datetime_value": datetime_value, "decode_text": decode_text, "fallback": fallback}
    not_null = 0
    for i, col in enumerate(columns):
        if not col.nullable:
            not_null |= 1 << i
    if null_bytes == 1:
        body = ["nulls = buf[pos]; pos += 1"]
    else:
        body = [f"nulls = from_bytes(buf[pos:pos+{null_bytes}], 'little'); pos += {null_bytes}"]
    body.append(f"if nulls & {not_null}: return fallback(buf, pos, nulls)")
    i = 0
    while i < len(names):
        # a run of fixed-width NOT NULL columns: one unpack
        run = []
        while i + len(run) < len(names):
            j = i + len(run)
            code = _fixed_struct_code(lib_columns[j], columns[j]) if not columns[j].nullable else None
            if code is None:
                break
            run.append(code)
        if run:
            fmt = struct.Struct("<" + "".join(run))
            env[f"S{i}"] = fmt.unpack_from
            targets = ", ".join(f"v{k}" for k in range(i, i + len(run)))
            body.append(f"{targets}{',' if len(run) == 1 else ''} = S{i}(buf, pos); pos += {fmt.size}")
            i += len(run)
            continue
        v = f"v{i}"
        code = None
        if wanted is not None and names[i] not in wanted:
            code = _skip_code(lib_columns[i], columns[i])
        if code is None:
            code = _column_code(v, lib_columns[i], columns[i])
        if code is None:
            env[f"R{i}"] = readers[i]
            code = [f"{v}, pos = R{i}(buf, pos)"]
        if columns[i].nullable:
            body.append(f"if nulls & {1 << i}: {v} = None")
            body.append("else:")
            body += ["    " + line for line in code]
        else:
            body += code
        i += 1
    body.append("return {" + ", ".join(f"{name!r}: v{k}" for k, name in enumerate(names)
                                       if wanted is None or name in wanted) + "}, pos")
    src = "def image(buf, pos):\n" + "".join("    " + line + "\n" for line in body)
    exec(compile(src, "<rowdecode image>", "exec"), env)  # noqa: S102 - code built above from column types only
    return env["image"]


LIB_ATTRS = ("type", "precision", "decimals", "max_length", "length_size", "size", "fsp", "bytes")
_DECODERS: dict[tuple, Any] = {}


class RowDecoder:
    """Decodes a table's full row images; build with `for_table` (None: use the library)."""

    def __init__(self, names: list[str], readers: list[Reader], lib_columns: list[Any] | None = None,
                 columns: list[Any] | None = None):
        self.columns = list(zip(names, readers))
        self.null_bytes = (len(names) + 7) // 8
        self.all_present = b"\xff" * (len(names) // 8) + (bytes([(1 << (len(names) % 8)) - 1]) if len(names) % 8 else b"")
        self._built = (names, readers, lib_columns, columns)
        self._partial: dict[frozenset[str], Callable[[bytes, int], tuple[dict[str, Any], int]]] = {}
        if lib_columns is not None and columns is not None:
            self.image = compile_image(names, readers, lib_columns, columns, self._with_nulls)

    def partial_image(self, wanted: frozenset[str] | None) -> Callable[[bytes, int], tuple[dict[str, Any], int]]:
        """A reader of only the `wanted` columns of an image (None, or the per-column loop: all)."""
        image = self._partial.get(wanted)  # per event: found at once after the first
        if image is not None:
            return image
        names, readers, lib_columns, columns = self._built
        if wanted is None or lib_columns is None or columns is None or not wanted <= set(names):
            return self.image
        image = self._partial[wanted] = compile_image(names, readers, lib_columns, columns, self._with_nulls, wanted)
        return image

    @classmethod
    def for_table(cls, lib_columns: list[Any], shape: TableShape) -> RowDecoder | None:
        if len(lib_columns) != len(shape.columns):
            return None
        # each binlog pass reads the table maps anew: the decoder (its generated code) is built
        # once per distinct table layout, not once per pass and table
        key = (tuple(tuple(getattr(lib, a, None) for a in LIB_ATTRS) for lib in lib_columns),
               tuple((c.name, c.data_type, c.column_type, c.charset, c.nullable) for c in shape.columns))
        cached = _DECODERS.get(key, False)
        if cached is not False:
            return cached
        decoder = cls._build(lib_columns, shape)
        if len(_DECODERS) >= 4096:
            _DECODERS.clear()
        _DECODERS[key] = decoder
        return decoder

    @classmethod
    def _build(cls, lib_columns: list[Any], shape: TableShape) -> RowDecoder | None:
        readers = []
        for lib, col in zip(lib_columns, shape.columns):
            reader = column_reader(lib, col.data_type, col.column_type, col.charset)
            if reader is None:
                return None
            readers.append(reader)
        return cls(shape.names, readers, lib_columns, shape.columns)

    def image(self, buf: bytes, pos: int) -> tuple[dict[str, Any], int]:
        """One row image: the null bitmap, then every non-NULL value in column order (the
        per-column loop; for_table's decoders use the generated `compile_image` instead)."""
        end = pos + self.null_bytes
        return self._with_nulls(buf, end, int.from_bytes(buf[pos:end], "little"))

    def _with_nulls(self, buf: bytes, pos: int, nulls: int) -> tuple[dict[str, Any], int]:
        row: dict[str, Any] = {}
        for name, read in self.columns:
            if nulls & 1:
                row[name] = None
            else:
                row[name], pos = read(buf, pos)
            nulls >>= 1
        return row, pos

    def readable(self, event: Any) -> bool:
        """Full images only (the library's path also reports MINIMAL images, which sync refuses)."""
        if event.columns_present_bitmap != self.all_present:
            return False
        return not isinstance(event, UpdateRowsEvent) or event.columns_present_bitmap2 == self.all_present

    def rows(self, event: Any, before: frozenset[str] | None = None) -> list[Any]:
        """The event's rows: value dicts, or (before, after) pairs for an update. Consumes the body.
        `before`: the columns wanted from before-images (an update's first image, a delete's
        only one); None: all."""
        buf = getattr(event, "body", None)  # packets.py's events carry their rows' bytes
        if buf is None:  # the library's: the rest of its packet
            packet = event.packet
            buf = bytes(packet.read(event.event_size - packet.read_bytes))
        out: list[Any] = []
        pos, end = 0, len(buf)
        image = self.image
        if isinstance(event, UpdateRowsEvent):
            old = self.partial_image(before)
            while pos < end:
                b, pos = old(buf, pos)
                after, pos = image(buf, pos)
                out.append((b, after))
        elif isinstance(event, DeleteRowsEvent):
            old = self.partial_image(before)
            while pos < end:
                row, pos = old(buf, pos)
                out.append(row)
        else:
            while pos < end:
                row, pos = image(buf, pos)
                out.append(row)
        return out


def event_changes(event: Any, kind: str, lib_columns: list[Any], shape: TableShape, route: Any,
                  decoder: RowDecoder | None, out: list[Any], before: frozenset[str] | None = None) -> int:
    """Append a rows event's row changes (apply.RowChange) to `out`; returns how many. The fast
    decoder where it reads the event, else the library's decoding fixed by values.fix_row.
    `before`: the columns any consumer reads from before-images (tables.before_columns); None: all
    (the library's path always gives all)."""
    if decoder is not None and decoder.readable(event):
        rows = decoder.rows(event, before)
        if kind == "update":
            out.extend([RowChange("update", route, before, after) for before, after in rows])
        elif kind == "insert":
            out.extend([RowChange("insert", route, None, row) for row in rows])
        else:
            out.extend([RowChange("delete", route, row, None) for row in rows])
        return len(rows)
    prepare_columns(lib_columns, shape)
    n = 0
    for row in event.rows:
        if kind == "update":
            before = fix_row(shape, row["before_values"], row["before_none_sources"])
            after = fix_row(shape, row["after_values"], row["after_none_sources"])
            out.append(RowChange("update", route, before, after))
        else:
            values = fix_row(shape, row["values"], row["none_sources"])
            out.append(RowChange(kind, route, values if kind == "delete" else None,
                                 values if kind == "insert" else None))
        n += 1
    return n
