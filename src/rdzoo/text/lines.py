"""Reading a data file's lines: decompression, line ends and per-line decoding (README, "Data
formats"), and how each file was decoded (`Decoding`, part of a load's report).

A line ends at \\n, \\r\\n or \\r, and (outside JSONL, whose strings may hold it) at NEL
(U+0085). Each line is decoded on its own: UTF-8, else cp1252, else latin-1; the lines that
were not UTF-8 are named in the report.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

COMPRESSED = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
LINE_END = re.compile(rb"\r\n|\r|\n")
NEL = "\x85"
MAX_BYTES = 2**31  # a compressed file that grows past this is refused (a decompression bomb)
SHOWN = 5  # line numbers shown in a one-line note; --json lists them all


def blank(line: str) -> bool:
    """A line of white space only holds no record (str.strip's white space: spaces, tabs, NBSP, ...)."""
    return not line.strip()


@dataclass
class Decoding:
    """How one file was decoded: the lines (1-based) that were not UTF-8, by the encoding used."""

    file: str
    fallback: dict[str, list[int]] = field(default_factory=dict)  # "cp1252" / "latin-1" -> line numbers
    bom_lines: list[int] = field(default_factory=list)  # lines after the first that began with a BOM

    @property
    def encoding(self) -> str:
        """'utf-8' when every line was UTF-8, else the fallback encoding(s) of the other lines ('cp1252')."""
        return "+".join(["utf-8"] * (not self.fallback) + sorted(self.fallback))

    def notes(self) -> list[str]:
        """One line for each fallback encoding, and one for byte-order marks removed, naming the lines."""
        name = Path(self.file).name
        out = [f"{name}: {len(lines)} line(s) not UTF-8, read as {enc} ({shown_lines(lines)})"
               for enc, lines in sorted(self.fallback.items())]
        if self.bom_lines:
            out.append(f"{name}: byte-order mark removed at the start of {len(self.bom_lines)} line(s) "
                       f"({shown_lines(self.bom_lines)})")
        return out


def shown_lines(numbers: list[int]) -> str:
    """Line numbers for a one-line note: 'line 3', 'lines 1, 2, 5', at most SHOWN of them then '...'."""
    shown = ", ".join(map(str, numbers[:SHOWN]))
    return f"line {shown}" if len(numbers) == 1 else f"lines {shown}" + (", ..." if len(numbers) > SHOWN else "")


def format_of(path: Path) -> str:
    """The format suffix of a file, looking through a compression suffix: d.conllu.xz -> '.conllu'."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it ends in .gz, .xz or .bz2.

    Raises DataError when the file cannot be read, is not valid for its compression, or
    decompresses to more than MAX_BYTES bytes."""
    opener = COMPRESSED.get(path.suffix.lower())
    try:
        if opener is None:
            return path.read_bytes()
        with opener(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (EOFError, lzma.LZMAError) as exc:
        raise DataError(f"cannot read {path}: not a valid {path.suffix} file ({exc})") from None
    if len(raw) > MAX_BYTES:
        raise DataError(f"{path}: decompresses to more than {MAX_BYTES:,} bytes")
    return raw


def _decode_line(raw: bytes) -> tuple[str, str | None]:
    """One line's bytes -> (text, fallback encoding or None when it was UTF-8)."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    try:  # the usual encoding of Windows text; 0x81, 0x8D, 0x8F, 0x90 and 0x9D are undefined in it
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"  # every byte is a character


def read_lines(path: Path, nel: bool = True) -> tuple[list[str], Decoding]:
    """A file's lines (without their ends), each decoded on its own, and how they were decoded.

    Lines end at \\r\\n, \\r or \\n, and with nel=True also at NEL (U+0085). A UTF-8 byte-order mark is
    dropped at the start of the file, and of any line (files joined with `cat`), which is reported.
    Raises DataError for a file that cannot be read, is UTF-16/32 or holds NUL bytes (binary)."""
    raw = read_bytes(path)
    where = str(path)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{where}: UTF-16 or UTF-32 text (a byte-order mark {raw[:2].hex(' ')}); rdzoo reads "
                        "UTF-8 (or cp1252) files: save it as UTF-8")
    if b"\x00" in raw[:4096]:
        raise DataError(f"{where}: looks binary (NUL bytes), not a text file")
    decoding = Decoding(where)
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # the UTF-8 byte-order mark
    try:  # the common case in one step; per line only when some line is not UTF-8
        text = raw.decode("utf-8")
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if (not nel or NEL not in text) and "\ufeff" not in text:
            return lines, decoding
        physical = [(line, None) for line in lines]
    except UnicodeDecodeError:
        physical = [_decode_line(line) for line in LINE_END.split(raw)]
        if physical and physical[-1][0] == "":
            physical.pop()
    lines = []
    for text, fallback in physical:
        for piece in (text.split(NEL) if nel and NEL in text else [text]):
            if piece.startswith("\ufeff"):
                piece = piece[1:]
                if lines:
                    decoding.bom_lines.append(len(lines) + 1)
            lines.append(piece)
            if fallback:
                decoding.fallback.setdefault(fallback, []).append(len(lines))
    return lines, decoding
