"""Labels: one reading of a label in every format (`label_value`), and naming them (a
`label_names.txt` of `value name` lines or a dict: `read_label_names`, `name_labels`; a run's own
names on data labelled otherwise: `name_as_trained`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from pathlib import Path

from ..errors import DataError
from .dataset import Split, TextData, label_set
from .lines import blank, read_lines

LABEL_NAMES_FILE = "label_names.txt"
LABEL_SEP = re.compile(r"[ \t]+")
# a label spelt as a decimal number (JSON's numbers, and a sign, leading zeros or a bare point as other tools write)
NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]{1,18}))?")
NOT_A_VALUE = re.compile(r"[+-]?(?:nan|inf|infinity)|null", re.IGNORECASE)  # as float(), JSON and pandas write them
POSITIONAL = 50  # zeros: a number that would need more of them around its digits is written with an exponent


def label_value(text: str) -> str:
    """A class label as read from any format -> the label it stands for (README, "Data formats", labels).

    White space around it is dropped. A label spelt as a number is that number, written one way, so one
    number is never two classes: an integral value is its integer (`1.0`, `1e0`, `+1`, `01` -> `1`), any
    other the shortest decimal (`1.50` -> `1.5`), each with an exponent only where it saves more than
    POSITIONAL zeros (`1e60` -> `1e+60`). Any
    other label is kept as written (`pos`, `true`). Raises ValueError, saying why, for a label that is
    not a value: empty, NaN, infinite or null. Text is compared in Unicode's composed form (NFC), so `café`
    typed with a combining accent is the class `café` too."""
    text = unicodedata.normalize("NFC", text.strip())
    if not text:
        raise ValueError("empty label")
    if NOT_A_VALUE.fullmatch(text):
        raise ValueError(f"the label {text!r} is not a value (NaN, infinite or null): give the line its class "
                         "or leave the line out")
    m = NUMBER.fullmatch(text)
    if m is None or not (m[2] or m[3]):
        return text
    sign, whole, frac, exp = m[1], m[2], m[3] or "", int(m[4] or 0)
    digits = (whole + frac).lstrip("0")
    if not digits:
        return "0"
    exp -= len(frac)  # value = digits * 10**exp
    kept = digits.rstrip("0")
    exp, digits = exp + len(digits) - len(kept), kept
    sign = "-" if sign == "-" else ""
    point = len(digits) + exp  # where the point goes, counted from the left of the digits
    if 0 <= exp <= POSITIONAL:
        return sign + digits + "0" * exp
    if exp < 0 and -POSITIONAL <= point:
        return sign + (digits[:point] + "." + digits[point:] if point > 0 else "0." + "0" * -point + digits)
    return f"{sign}{digits[0]}{'.' + digits[1:] if len(digits) > 1 else ''}e{point - 1:+d}"


# --- label names ----------------------------------------------------------------------


def read_label_names(path: str | Path) -> dict[str, str]:
    """A label-names file -> {label as in the data: name}. One `value name` a line (the name is the rest of
    the line: `0 very negative`); blank lines and lines starting with # are ignored. Raises DataError for a
    value given twice or two values with one name (that would merge two classes)."""
    path = Path(path)
    lines, _ = read_lines(path)
    names: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        if blank(line) or line.lstrip().startswith("#"):
            continue
        value, *rest = LABEL_SEP.split(line.strip(), maxsplit=1)
        if not rest or not rest[0].strip():
            raise DataError(f"{path}, line {n}: expected `value name` (e.g. `0 DESC`), found {line.strip()!r}",
                            "label_names")
        name = rest[0].strip()
        try:
            value = label_value(value)  # as the data's labels are read: `1.0 pos` names the label 1
        except ValueError as exc:
            raise DataError(f"{path}, line {n}: {exc}", "label_names") from None
        if value in names:
            raise DataError(f"{path}, line {n}: label {value!r} is named twice", "label_names")
        if name in names.values():
            raise DataError(f"{path}, line {n}: the name {name!r} is given to two labels; that would merge them",
                            "label_names")
        names[value] = name
    if not names:
        raise DataError(f"{path}: names no labels (expected `value name` lines, e.g. `0 DESC`)", "label_names")
    return names


def label_mapping(names: dict, where: str) -> dict[str, str]:
    """A {value: name} dict with its values read as labels are (label_value: {1.0: "x"} names the label 1).
    Raises DataError for a value that is not a label, or two values that are one label."""
    out: dict[str, str] = {}
    for value, name in names.items():
        try:
            label = label_value(str(value))
        except ValueError as exc:
            raise DataError(f"{where}: {exc}", "label_names") from None
        if label in out:
            raise DataError(f"{where}: label {label!r} is named twice", "label_names")
        out[label] = str(name)
    return out


def _rename(split: Split | None, names: dict[str, str]) -> Split | None:
    """A split with every label (or tag) replaced by names[label]."""
    if split is None:
        return None
    if split.tagged:
        return Split(split.texts, [[names[t] for t in tags] for tags in split.labels])
    return Split(split.texts, [names[label] for label in split.labels])


def _labels(data: TextData) -> set[str]:
    """The distinct labels (or tags) of every split."""
    return set().union(*(label_set(s) for s in (data.train, data.dev, data.test) if s is not None))


def name_labels(data: TextData, names: dict[str, str], source: str) -> TextData:
    """Every label (or tag) replaced by its name; a label the names do not cover is an error, not left as is.

    `names` maps a label value to its name, `source` (the names' file) is named in the note and the
    error. Raises DataError listing the labels without a name."""
    unnamed = sorted(_labels(data) - names.keys())
    if unnamed:
        raise DataError(f"{data.name}: label(s) {', '.join(map(repr, unnamed[:5]))} have no name in {source}; "
                        f"it names {', '.join(names)}", "label_names")

    from ..names import natural_key

    shown = ", ".join(f"{k} {v}" for k, v in list(names.items())[:8]) + (", ..." if len(names) > 8 else "")
    return replace(data, train=_rename(data.train, names), dev=_rename(data.dev, names),
                   test=_rename(data.test, names), notes=[*data.notes, f"labels named by {source} ({shown})"],
                   label_order=[names[v] for v in sorted(names, key=natural_key)], label_values=dict(names))


def name_as_trained(data: TextData, names: dict | None, known: list[str], source: str) -> TextData:
    """`data` with its labels named as a model knows them, where they stand for the same values.

    `known` are the model's label names, `names` the {value: name} map applied to its labels in training
    (None: none was). A label the model knows stays; one that data named at load (`data.label_values`)
    stands for its value; a value the model knows stays, and one of `names` becomes its name. So a run
    trained on TREC's names evaluates files labelled 0-5, and a run trained on 0-5 the named built-in
    set. Data with a label that maps to nothing the model knows is returned as it is (evaluating it then
    names the unknown labels). Raises DataError for a `names` that gives one value two names."""
    known_set = set(known)
    labels = _labels(data)
    if labels <= known_set:
        return data
    value_of = {name: value for value, name in (data.label_values or {}).items()}
    trained = label_mapping(names, source) if names else {}
    mapping = {}
    for label in labels:
        value = value_of.get(label, label)
        mapping[label] = label if label in known_set else value if value in known_set else trained.get(value)
    if None in mapping.values():
        return data
    from ..names import natural_key

    pairs = [(k, v) for k, v in sorted(mapping.items(), key=lambda kv: natural_key(kv[0])) if k != v]
    shown = ", ".join(f"{k} {v}" for k, v in pairs[:8]) + (", ..." if len(pairs) > 8 else "")
    return replace(data, train=_rename(data.train, mapping), dev=_rename(data.dev, mapping),
                   test=_rename(data.test, mapping), notes=[*data.notes, f"labels named by {source} ({shown})"],
                   label_order=[n for n in known if n in mapping.values()],
                   label_values={value_of.get(k, k): v for k, v in mapping.items()})
