"""Docs that cannot drift: the README's rule table is generated from the rule headers."""

from __future__ import annotations

import re
from pathlib import Path

from tracecode.rules import catalogue_markdown, load_rules
from tracecode.settings import Settings

README = Path(__file__).parents[1] / "README.md"


def test_the_readme_rule_table_matches_sql_rules() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- rules:start -->\n(.*?)\n?<!-- rules:end -->", text, re.S)
    assert block, "README.md lacks the <!-- rules:start/end --> markers"
    expected = catalogue_markdown(load_rules(settings=Settings()))
    assert block.group(1).strip() == expected.strip(), (
        "README rule table is stale: run `tracecode rules --markdown` and paste it between "
        "the markers (or `python -m tracecode.docs`)")


def test_the_readme_gives_the_two_commands_first() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.index("make demo") < text.index("make test") < text.index("## ")


def test_the_examples_in_module_docstrings_hold() -> None:
    import doctest

    from tracecode import regions, safe_cells

    for module in (regions, safe_cells):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__
