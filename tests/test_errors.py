"""Library errors carry the parameter they are about (`param`), name it as the library spells it,
and the CLI prints the option that sets it in its place (cli.OPTION_OF, cli.in_cli_terms)."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rdzoo.cli import OPTION_OF, in_cli_terms
from rdzoo.device import parse_bytes, parse_device, parse_gpus, resolve_precision, worker_devices
from rdzoo.errors import DataError, DeviceError
from rdzoo.text.data import Columns, kfold, load_data, read_file

SRC = Path(__file__).resolve().parents[1] / "src" / "rdzoo"


def raised(call) -> Exception:
    with pytest.raises((DataError, DeviceError)) as info:
        call()
    return info.value


@pytest.mark.parametrize("call, param, shown", [
    (lambda: parse_device("tpu"), "device", "--device 'tpu': expected one of auto, cpu"),
    (lambda: parse_gpus("0,0"), "gpus", "--gpus '0,0': expected distinct GPU numbers"),
    (lambda: parse_bytes("8 bananas"), "max_memory", "--max-memory '8 bananas': expected a size"),
    (lambda: worker_devices(2, "cpu", 2, [0]), "gpus", "--gpus picks CUDA devices, not cpu"),
    (lambda: worker_devices(2, "auto", 2, [0, 2]), "gpus", "--gpus 0,2: no GPU 2 on this machine"),
    (lambda: worker_devices(2, "cuda:3", 2), "device", "--device cuda:3: no such GPU"),
    (lambda: resolve_precision("fp8", __import__("torch").device("cpu")), "precision", "--precision 'fp8': expected"),
])
def test_a_device_error_carries_its_parameter_and_the_cli_names_the_option(call, param, shown):
    exc = raised(call)
    assert exc.param == param and str(exc).startswith(param + " ") and "--" not in str(exc)
    assert in_cli_terms(exc).startswith(shown)


def test_a_data_error_carries_its_parameter_and_the_cli_names_the_option(tmp_path):
    (tmp_path / "r.csv").write_text("review,stars\ngood,5\n")
    exc = raised(lambda: read_file(tmp_path / "r.csv"))
    assert exc.param == "text_col" and "--" not in str(exc)
    assert "no column 'text' (set it with --text-col); the header (line 1) names: review, stars" in in_cli_terms(exc)
    exc = raised(lambda: read_file(tmp_path / "r.csv", Columns("review")))
    assert exc.param == "label_col" and "(set it with --label-col)" in in_cli_terms(exc)
    (tmp_path / "t.conll").write_text("a\tO\nb\tB-x\n")
    exc = raised(lambda: read_file(tmp_path / "t.conll", Columns("words")))
    assert in_cli_terms(exc) == f"{tmp_path / 't.conll'}: --text-col/--label-col do not apply to CoNLL files (the tag is the last column)"
    (tmp_path / "b.conll").write_text("a\tO\nb\tB-x\n\nc\tO\nd\tI-x\n\ne\tB-x\nf\tI-x\n")
    exc = raised(lambda: read_file(tmp_path / "b.conll"))
    assert exc.param == "on_bad_line" and in_cli_terms(exc).endswith("(use --on-bad-line skip to skip such lines)")
    exc = raised(lambda: load_data(tmp_path / "b.conll", on_bad_line="maybe"))
    assert in_cli_terms(exc) == "--on-bad-line must be 'error' or 'skip', got 'maybe'"
    (tmp_path / "names.txt").write_text("0 a\n1 a\n")
    exc = raised(lambda: load_data("trec", label_names=tmp_path / "names.txt"))
    assert exc.param == "label_names"
    assert raised(lambda: load_data(tmp_path / "none.txt")).param == "source"
    assert raised(lambda: kfold(load_data("synthetic"), 1, 0)).param == "k"


def test_a_mention_inside_a_path_or_a_longer_name_is_not_the_parameter(tmp_path):
    exc = DataError(f"{tmp_path}/device/x.txt, the device_table: device cuda: no CUDA device", "device")
    assert in_cli_terms(exc) == f"{tmp_path}/device/x.txt, the device_table: --device cuda: no CUDA device"
    assert in_cli_terms(DataError("no such file", "text_col")) == "no such file"  # not named: left as it is


def test_every_device_error_names_its_parameter_and_every_parameter_has_an_option():
    """Each `raise DeviceError(...)` in the package passes a param, and each param a DeviceError or
    DataError passes as a constant is an option of the command line (or the fold count K, which
    `train --cv` sets and no message names)."""
    params = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("DeviceError", "DataError"):
                args = node.args[1:] + [k.value for k in node.keywords if k.arg == "param"]
                if node.func.id == "DeviceError":
                    assert args, f"{path.name}:{node.lineno}: a DeviceError without its param"
                params |= {a.value for a in args if isinstance(a, ast.Constant)}
    assert {"device", "precision", "gpus", "source", "on_bad_line", "label_names", "unlabeled"} <= params
    assert params - {"k"} <= set(OPTION_OF)


def test_the_cli_prints_a_data_error_with_its_option(tmp_path):
    (tmp_path / "r.csv").write_text("review,stars\ngood,5\nbad,1\n")
    done = subprocess.run([sys.executable, "-m", "rdzoo.cli", "data", str(tmp_path / "r.csv")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("rdzoo: error: ") and "(set it with --text-col)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("parse, text, value", [
    ("parse_duration", "90", 90.0), ("parse_duration", "30m", 1800.0), ("parse_duration", "1.5h", 5400.0),
    ("parse_duration", "none", None), ("parse_count", "2M", 2e6), ("parse_count", "500k", 5e5),
    ("parse_count", "1.5e6", 1.5e6), ("parse_ms", "5ms", 5.0), ("parse_ms", "800us", 0.8), ("parse_ms", "2s", 2000.0),
    ("parse_ms", "0.5", 0.5)])
def test_numbers_with_units_on_the_command_line(parse, text, value):
    from rdzoo import cli

    assert getattr(cli, parse)(text) == value


@pytest.mark.parametrize("parse, text, message", [
    ("parse_duration", "abc", "--timeout 'abc': expected seconds or a number with s, m, h or d"),
    ("parse_duration", "0", "--timeout '0': must be a positive, finite time"),
    ("parse_duration", "1e400", "must be a positive, finite time"), ("parse_duration", "nan", "finite time"),
    ("parse_duration", "1_0", "--timeout '1_0': expected seconds"),
    ("parse_count", "x", "--max-params 'x' is not a count"), ("parse_count", "0", "must be a positive count"),
    ("parse_count", "-1", "must be a positive count"),
    ("parse_ms", "s", "--max-latency 's': expected milliseconds"), ("parse_ms", "-1ms", "must be a positive time")])
def test_a_number_with_a_unit_that_does_not_read_is_one_error_naming_the_option(parse, text, message):
    from rdzoo import cli

    with pytest.raises(cli.UsageError, match=re.escape(message)):
        getattr(cli, parse)(text)
