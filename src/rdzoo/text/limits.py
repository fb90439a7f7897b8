"""The one limit on a line of data, the same in every format (README, "Data formats", limits)."""

MAX_LINE = 1_000_000  # characters; a longer "line" is a binary or broken file


def line_too_long(line: str) -> str | None:
    """Why a line is refused for its length (over MAX_LINE characters), or None."""
    if len(line) <= MAX_LINE:
        return None
    return f"a line of {len(line):,} characters; rdzoo reads lines of up to {MAX_LINE:,} in every format"
