"""Every command's help shows its own words: rich markup must not eat an extra's name in brackets."""

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
