"""Search spaces as YAML: every key path is a spec key, so a sampled trial is a spec.

    name: default
    fixed:                          # merged into every trial's spec
      embedding: {kind: word, dim: 128}
      train: {epochs: 4}
    choose:                         # sampled for every trial
      train.lr: {float: [1.0e-4, 3.0e-3], log: true}
      family:                       # a branch per family: its keys are sampled only there
        resnet:
          encoder.stages: {choice: [[1, 1], [2, 2]]}
          encoder.skip: {choice: [none, residual, gated, rezero]}
        densenet:
          encoder.growth_rate: {int: [8, 48], step: 8}
          encoder.skip: dense       # a plain value is a constant
    start: [kim-cnn, densenet-sent] # zoo models to train first (each must be a point of the space)

A parameter is `{int: [lo, hi]}`, `{float: [lo, hi]}` (each with optional
`log: true` or `step`), or `{choice: [...]}`. Sampling goes through Optuna's
define-by-run `trial.suggest_*`; a family's parameters are named
`family/key` so that branches never share a distribution.

`start` names zoo models that the search evaluates before sampling anything
(Optuna's `enqueue_trial`), so its best dev accuracy is never below theirs.
Each must be a point of the space: `Space.params_for` finds the parameters
that rebuild it, and loading the space fails if none do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpecError
from .families import FAMILIES
from .names import did_you_mean
from .spec import apply_overrides
from .yamlio import deep_merge, read_yaml_file

TOP_KEYS = ("name", "description", "fixed", "choose", "start")
PARAM_KINDS = ("int", "float", "choice")
PARAM_KEYS = PARAM_KINDS + ("log", "step")


@dataclass(frozen=True)
class Param:
    """One searched spec key: an int or float range (`low`, `high`, optional `log` or `step`), a
    `choice` among `choices`, or a `const` plain `value`."""

    kind: str  # int | float | choice | const
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    value: Any = None

    def sample(self, trial, name: str) -> Any:
        """This parameter's value for an Optuna trial, suggested under `name` (a const is returned as is)."""
        if self.kind == "const":
            return self.value
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)
        # Optuna's categorical choices must be scalars: lists travel as their JSON text
        picked = trial.suggest_categorical(name, [_encode(c) for c in self.choices])
        return _decode(picked, self.choices)


@dataclass(frozen=True)
class Space:
    """A parsed search space: `fixed` spec keys, the `common` parameters of every trial, each
    family's own parameters, and the zoo models to `start` with (see the module docstring)."""

    name: str
    description: str
    fixed: dict
    common: dict[str, Param]
    families: dict[str, dict[str, Param]] = field(default_factory=dict)
    start: tuple[str, ...] = ()

    def sample(self, trial) -> dict:
        """A spec dict for this trial (validated later by spec.from_dict)."""
        values = {key: p.sample(trial, key) for key, p in self.common.items()}
        family = trial.suggest_categorical("family", list(self.families)) if len(self.families) > 1 \
            else next(iter(self.families))
        values.update({key: p.sample(trial, f"{family}/{key}") for key, p in self.families[family].items()})
        data = deep_merge(self.fixed, {"family": family})
        return apply_overrides(data, values)

    def params_for(self, name: str) -> dict:
        """The Optuna parameters whose sample rebuilds zoo model `name` exactly.

        Every resolved spec key must come out the same (name and description
        aside), so a start trial trains the zoo model with its own recipe.
        Raises SpecError naming the first key the space cannot reproduce.
        """
        import optuna

        from .spec import from_dict, load

        target = load(name)
        want = _comparable(target.to_dict())
        family = target.family
        if family not in self.families:
            raise SpecError("start", f"{name} is a {family} model; space {self.name!r} searches "
                            f"{', '.join(self.families)}")
        params = {"family": family} if len(self.families) > 1 else {}
        for prefix, group in (("", self.common), (f"{family}/", self.families[family])):
            for key, param in group.items():
                if param.kind == "const":
                    continue
                value = _value_at(want, key)
                if param.kind == "choice":
                    value = _equivalent_choice(target, want, key, param.choices)
                    if value is _MISSING:
                        raise SpecError("start", f"{name}: {key} is {_value_at(want, key)!r}, which the space's "
                                        f"choices {list(param.choices)} cannot give")
                    value = _encode(value)
                elif not (param.low <= value <= param.high):
                    raise SpecError("start", f"{name}: {key} is {value!r}, outside the space's range "
                                    f"[{param.low}, {param.high}]")
                params[prefix + key] = value
        got = _comparable(from_dict(self.sample(optuna.trial.FixedTrial(params))).to_dict())
        if got != want:
            key, a, b = _first_difference(want, got)
            raise SpecError("start", f"{name} is not a point of space {self.name!r}: {key} is {a!r} in the zoo "
                            f"model and {b!r} in the space (fix it in `fixed` or make it a choice)")
        return params


_MISSING = object()


def _comparable(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in ("name", "description")}


def _value_at(d: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return _MISSING
        d = d[part]
    return d


def _equivalent_choice(target, want: dict, key: str, choices: tuple) -> Any:
    """The choice that, set at `key`, leaves the resolved spec unchanged (a width of 300
    for one stage resolves to [300]); _MISSING if none does."""
    from .spec import from_dict

    for c in choices:
        if c == _value_at(want, key):
            return c
    for c in choices:
        try:
            if _comparable(from_dict(apply_overrides(target.to_dict(), {key: c})).to_dict()) == want:
                return c
        except SpecError:
            continue
    return _MISSING


def _first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if a.get(k, _MISSING) != b.get(k, _MISSING):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
    return path, a, b


def _encode(choice: Any) -> Any:
    return json.dumps(choice) if isinstance(choice, (list, dict)) else choice


def _decode(picked: Any, choices: tuple) -> Any:
    for c in choices:
        if _encode(c) == picked:
            return c
    return picked


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(path, f"expected a finite number, got {value!r}")
    return value


def parse_param(raw: Any, path: str) -> Param:
    """A parameter's YAML value -> Param; anything but a mapping with int, float or choice is a const.

    Raises SpecError at `path` for unknown keys, two kinds at once, bad bounds or choices, or
    log combined with step (Optuna cannot) or with low <= 0."""
    if not (isinstance(raw, dict) and any(k in raw for k in PARAM_KINDS)):
        return Param("const", value=raw)
    unknown = [k for k in raw if k not in PARAM_KEYS]
    if unknown:
        raise SpecError(f"{path}.{unknown[0]}", f"unknown key; a parameter takes: {', '.join(PARAM_KEYS)}"
                        f"{did_you_mean(unknown[0], PARAM_KEYS)}")
    kinds = [k for k in PARAM_KINDS if k in raw]
    if len(kinds) > 1:
        raise SpecError(path, f"give one of int, float or choice, not {' and '.join(kinds)}")
    kind = kinds[0]
    if kind == "choice":
        choices = raw["choice"]
        if not isinstance(choices, list) or not choices:
            raise SpecError(f"{path}.choice", f"expected a non-empty list of values, got {choices!r}")
        if len(choices) > 1000:
            raise SpecError(f"{path}.choice", f"{len(choices)} choices is too many (at most 1000)")
        if len({json.dumps(_encode(c), sort_keys=True, default=str) for c in choices}) != len(choices):
            raise SpecError(f"{path}.choice", "lists a value twice")
        if "log" in raw or "step" in raw:
            raise SpecError(path, "log and step apply to int and float ranges, not to choice")
        return Param("choice", choices=tuple(choices))
    bounds = raw[kind]
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise SpecError(f"{path}.{kind}", f"expected [low, high], got {bounds!r}")
    low, high = (_number(b, f"{path}.{kind}") for b in bounds)
    if kind == "int" and not all(float(b).is_integer() for b in (low, high)):
        raise SpecError(f"{path}.int", f"bounds must be integers, got {bounds!r}")
    if low > high:
        raise SpecError(f"{path}.{kind}", f"low {low} is above high {high}")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise SpecError(f"{path}.log", f"expected true or false, got {log!r}")
    step = raw.get("step")
    if step is not None:
        step = _number(step, f"{path}.step")
        if step <= 0 or (kind == "int" and not float(step).is_integer()):
            raise SpecError(f"{path}.step", f"must be a positive {'integer' if kind == 'int' else 'number'}, got {step}")
        if log:
            raise SpecError(path, "Optuna cannot combine log with step; use one")
    if log and low <= 0:
        raise SpecError(f"{path}.{kind}", f"a log range needs low > 0, got {low}")
    return Param(kind, low=low, high=high, log=log, step=step)


def _params(raw: Any, path: str) -> dict[str, Param]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError(path, f"expected a mapping of spec key paths to parameters, got {raw!r}")
    out = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            raise SpecError(path, f"keys are spec key paths such as encoder.skip, got {key!r}")
        out[key] = parse_param(value, f"{path}.{key}")
    return out


def _check_chosen_once(common: dict, branch: dict, family: str) -> None:
    """A trial samples each key in one place: the same key (or a section and a key inside it) in
    `choose` and in a family's branch would leave one of the two silently unused."""
    places = [(key, f"choose.{key}") for key in common] + [(key, f"choose.family.{family}.{key}") for key in branch]
    for i, (key, where) in enumerate(places):
        for other, other_where in places[:i]:
            if key == other or key.startswith(other + ".") or other.startswith(key + "."):
                raise SpecError(where, f"{other_where} sets it too; choose each key in one place")


def parse_space(data: Any, where: str = "space") -> Space:
    """A search space's parsed YAML -> Space; `where` names it in messages and gives its default name.

    Checks the layout only (check_space checks keys and values against the spec).
    Raises SpecError naming the key path for an unknown key, a non-mapping, or an unknown family."""
    if not isinstance(data, dict):
        raise SpecError("", f"{where}: a search space must be a mapping, got {type(data).__name__}")
    for key in data:
        if key not in TOP_KEYS:
            raise SpecError(str(key), f"unknown key in a search space; allowed: {', '.join(TOP_KEYS)}{did_you_mean(key, TOP_KEYS)}")
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise SpecError("fixed", f"expected a mapping of spec keys, got {fixed!r}")
    choose = data.get("choose") or {}
    if not isinstance(choose, dict):
        raise SpecError("choose", f"expected a mapping of spec key paths to parameters, got {choose!r:.60}")
    choose = dict(choose)
    branches = choose.pop("family", None)
    if branches is None:
        family = fixed.get("family")
        if not isinstance(family, str) or family not in FAMILIES:
            raise SpecError("choose.family", f"name the families to search (a branch each: {', '.join(FAMILIES)}), "
                            "or set fixed.family")
        branches = {family: {}}
    if not isinstance(branches, dict) or not branches:
        raise SpecError("choose.family", f"expected a branch per family, e.g. resnet: {{...}}; families: {', '.join(FAMILIES)}")
    common = _params(choose, "choose")
    families = {}
    for family, params in branches.items():
        if not isinstance(family, str) or family not in FAMILIES:
            raise SpecError(f"choose.family.{family}", f"unknown family; one of: {', '.join(FAMILIES)}{did_you_mean(family, FAMILIES)}")
        families[family] = _params(params, f"choose.family.{family}")
        _check_chosen_once(common, families[family], family)
    name = data.get("name", Path(where).stem)
    if not isinstance(name, str):
        raise SpecError("name", f"expected a string, got {name!r}")
    start = data.get("start") or []
    if not isinstance(start, list) or not all(isinstance(s, str) and s for s in start):
        raise SpecError("start", f"expected a list of zoo model names, got {start!r}")
    return Space(name, str(data.get("description", "")), fixed, common, families, tuple(start))


def space_path(source: str) -> Path:
    """A built-in space's name (search_spaces/NAME.yaml) or a YAML file's path -> the file.

    Raises SpecError when it is neither, listing the named spaces."""
    from .zoo import resource_dir

    folder = resource_dir("search_spaces")
    named = folder / f"{source}.yaml"
    if named.is_file():
        return named
    path = Path(source).expanduser()
    if path.is_file():
        return path
    names = sorted(p.stem for p in folder.glob("*.yaml"))
    hint = did_you_mean(source, names) or f"; named spaces: {', '.join(names)}"
    raise SpecError("", f"no such search space: {source}{hint}")


def list_spaces() -> list[str]:
    """The built-in search spaces' names, sorted."""
    from .zoo import resource_dir

    return sorted(p.stem for p in resource_dir("search_spaces").glob("*.yaml"))


def load_space(source: str = "default") -> Space:
    """Read, parse and check a search space by name or path (see space_path).

    Raises SpecError for an unreadable file or bad YAML, a bad layout, a key or value the spec does
    not allow, or a start model that is not a point of the space."""
    path = space_path(source)
    space = parse_space(read_yaml_file(path), str(path))
    check_space(space)
    return space


def check_space(space: Space) -> None:
    """Every key must be a spec key and every value, bound and choice must fit it, in each family's
    branch; every start model must be a point of the space.

    Raises SpecError naming the key and the branch, or the start model."""
    from .spec import check_value

    for family, branch in space.families.items():
        where = f"{family} branch of search space {space.name!r}"
        try:
            for key, value in space.fixed.items():
                if key != "family":
                    check_value(family, key, value)
            for key, param in {**space.common, **branch}.items():
                if key == "family":
                    continue
                values = {"const": [param.value], "choice": list(param.choices)}.get(param.kind, [param.low, param.high])
                if param.kind == "int":
                    values = [int(v) for v in values]
                for value in values:
                    check_value(family, key, value)
        except SpecError as exc:
            raise SpecError(exc.path, f"{exc.message} (in the {where})") from None
    for name in space.start:
        space.params_for(name)  # a start model the space cannot express is an error now, not mid-search
