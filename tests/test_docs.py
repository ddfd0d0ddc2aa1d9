"""The README and `--help` cannot drift apart (after sqlite-utils' tests/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from pipeline.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def commands_section() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Commands\n(.*?)^## ", text, flags=re.S | re.M)
    assert match, "README needs a '## Commands' section"
    return match.group(1)


def command_options(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in param.opts if opt.startswith("--")}


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_and_option_is_in_the_readme(name: str) -> None:
    section = commands_section()
    command = main.commands[name]
    assert f"smsbatch {name}" in section, f"README does not document `smsbatch {name}`"
    assert command.help, f"`smsbatch {name}` has no help text"
    block = re.search(rf"^### `smsbatch {name}.*?(?=^### |\Z)", section, flags=re.S | re.M)
    assert block, f"README needs a '### `smsbatch {name} ...`' heading"
    for option in command_options(command):
        assert option in block.group(0), f"README does not document {name} {option}"


def test_readme_names_no_option_that_does_not_exist() -> None:
    known = {"--help", "--version", "--verbose"}
    for command in main.commands.values():
        known |= command_options(command)
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", commands_section()))
    assert mentioned - known == set()


def test_every_option_has_help_text() -> None:
    for name, command in main.commands.items():
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"smsbatch {name} {param.opts[0]} has no help text"


def test_readme_lists_the_result_columns_and_statuses_in_order() -> None:
    from pipeline.statuses import RESULT_COLUMNS, STATUSES

    text = README.read_text(encoding="utf-8")
    paragraph = text[text.index("plus `message`"):]
    paragraph = paragraph[: paragraph.index("The `Summary` sheet")]
    named = re.findall(r"`([a-z_0-9]+)`", paragraph)
    assert named == [c for c in RESULT_COLUMNS if c not in ("source_row", "phone_e164",
                                                                "status", "detail")]
    for status in STATUSES:
        assert f"| `{status}` |" in text, f"README's status table lacks {status}"


def test_the_readme_module_map_names_every_module_and_folder() -> None:
    text = README.read_text(encoding="utf-8")
    block = text[text.index("pipeline/                 the package"):]
    block = block[: block.index("```")]
    package = README.parent / "pipeline"
    missing = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if path.name == "__init__.py" and relative.parent != Path("."):
            continue  # a folder is named by its own line
        if path.name == "__main__.py":
            continue
        if path.name not in block:
            missing.append(str(relative))
    folders = {p.relative_to(package).parts[0] for p in package.rglob("*.py")
               if len(p.relative_to(package).parts) > 1}
    missing += [f"{f}/" for f in sorted(folders) if f"{f}/" not in block]
    assert missing == [], f"README's module map does not name: {missing}"
