"""Every command's help shows its own words: rich markup must not eat an extra's name in brackets; the
defaults it spells out are the library's."""

import inspect
import re

from typer.testing import CliRunner

from rdzoo.cli import app


def test_each_extra_named_in_a_help_text_is_shown_whole():
    runner = CliRunner()
    for command in app.registered_commands:
        name = command.name or command.callback.__name__.replace("_", "-")
        doc = command.callback.__doc__ or ""
        wanted = re.findall(r"rdzoo\\?\\?\[(\w+)\]", doc)
        if not wanted:
            continue
        result = runner.invoke(app, [name, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        for extra in wanted:
            assert f"rdzoo[{extra}]" in result.output, (name, result.output)


def test_search_defaults_are_the_final_stages_own():
    """The command line's final-stage defaults are FinalStage's (the command line spells them out so
    that `rdzoo --help` imports nothing heavy)."""
    from rdzoo.cli import search
    from rdzoo.nas import FinalStage

    defaults = {p.name: p.default for p in inspect.signature(search).parameters.values()}
    stage = FinalStage()
    assert (defaults["final"], defaults["final_seeds"], defaults["baseline"], defaults["final_copies"]) == \
        (stage.contenders, stage.seeds, stage.baseline, stage.copies)
