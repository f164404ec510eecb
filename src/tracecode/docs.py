"""Regenerate the generated parts of README.md: ``python -m tracecode.docs``."""

from __future__ import annotations

import re
from pathlib import Path

from tracecode.rules import catalogue_markdown, load_rules
from tracecode.settings import Settings


def replace_block(text: str, name: str, content: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"README.md lacks <!-- {name}:start --> / <!-- {name}:end -->")
    return pattern.sub(lambda m: m.group(1) + content.strip() + "\n" + m.group(2), text)


def main() -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    text = readme.read_text(encoding="utf-8")
    text = replace_block(text, "rules", catalogue_markdown(load_rules(settings=Settings())))
    readme.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
