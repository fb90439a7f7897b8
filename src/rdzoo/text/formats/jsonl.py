"""JSON Lines (.jsonl, .json): one object a line, its text and label in the chosen fields; a label is a
string or a number, read as spelt."""

from __future__ import annotations

import json

from ..dataset import Split
from ..labels import label_value
from .format import BadLines, Columns, Examples, Format, record_lines


class _Spelt(str):
    """A JSON number or constant (NaN, Infinity) as spelt in the file: read exactly, whatever its size
    (json's own int() refuses over 4,300 digits, its float() turns 1e400 into inf)."""


def _json_label(value) -> str:
    """A JSON label -> its label (label_value of a string or number as spelt; true -> 'true'). Raises
    ValueError, saying why, for null, an object or an array, or what label_value refuses."""
    if value is None:
        raise ValueError("the label is null, not a value: give the line its class or leave the line out")
    if isinstance(value, (dict, list)):
        raise ValueError(f"the label is a JSON {'object' if isinstance(value, dict) else 'array'}; a label is a "
                         "string or a number")
    return label_value(value if isinstance(value, str) else json.dumps(value))


class _TwiceError(ValueError):
    """A key given twice in one JSON object."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    # json keeps the last of a key given twice without a word; a line that says two things is refused
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _TwiceError(f"key {key!r} is given twice in one object; give each key once")
        seen[key] = value
    return seen


def read(lines: list[str], where: str, bad: BadLines, columns: Columns, scheme: str | None) -> tuple[Split, list[str]]:
    """JSON Lines, one object a line, the text and label in the chosen fields (`Columns`) -> (split, [])."""
    text_key, label_key = columns.text or "text", columns.label or "label"
    examples = Examples(where, bad, _json_label)
    for n, line in record_lines(lines, where, bad):
        try:
            obj = json.loads(line, parse_int=_Spelt, parse_float=_Spelt, parse_constant=_Spelt,
                             object_pairs_hook=_unique_keys)
        except _TwiceError as exc:
            bad(where, n, str(exc))
            continue
        except json.JSONDecodeError as exc:
            hint = ("; a JSON array or an object over several lines is not JSON Lines (one object a line)"
                    if line.strip() in ("[", "{") else "")
            bad(where, n, f"not JSON ({exc.msg}){hint}")
            continue
        except RecursionError:  # Python's json reads nesting only as deep as its recursion limit
            bad(where, n, "JSON nested too deeply to read (arrays or objects inside one another)")
            continue
        if not isinstance(obj, dict) or text_key not in obj or label_key not in obj:
            keys = ", ".join(obj) if isinstance(obj, dict) else f"a JSON {type(obj).__name__}, not an object"
            bad(where, n, f"needs fields {text_key!r} and {label_key!r}; found: {keys}")
            continue
        text = obj[text_key]
        if not isinstance(text, str) or isinstance(text, _Spelt) or not text.strip():
            bad(where, n, "text must be a non-empty string")
            continue
        examples.add(n, text.strip(), obj[label_key])
    return examples.split(), []


FORMAT = Format("JSON Lines", (".jsonl", ".json"), read, nel=False)  # JSON strings may hold NEL
