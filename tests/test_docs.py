"""The README and `--help` cannot drift apart (after sqlite-utils' tests/test_docs.py)."""

from __future__ import annotations

import ast
import io
import re
import tokenize
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
    paragraph = text[text.index("plus `message`") :]
    paragraph = paragraph[: paragraph.index("The `Summary` sheet")]
    named = re.findall(r"`([a-z_0-9]+)`", paragraph)
    assert named == [
        c for c in RESULT_COLUMNS if c not in ("source_row", "phone_e164", "status", "detail")
    ]
    for status in STATUSES:
        assert f"| `{status}` |" in text, f"README's status table lacks {status}"


def test_the_readme_module_map_names_every_module_and_folder() -> None:
    text = README.read_text(encoding="utf-8")
    block = text[text.index("pipeline/                 the package") :]
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
    folders = {
        p.relative_to(package).parts[0]
        for p in package.rglob("*.py")
        if len(p.relative_to(package).parts) > 1
    }
    missing += [f"{f}/" for f in sorted(folders) if f"{f}/" not in block]
    assert missing == [], f"README's module map does not name: {missing}"


# -- Citations: comments cite docs/ sections that exist, nothing outside the repository --------

ROOT = README.parent
CITING_TREES = ("pipeline", "tests", "benchmarks", "scripts")
# What citations of the old out-of-repository spec looked like: its section signs, its file
# name and its one-letter certainty tags in brackets.
FOREIGN = re.compile(r"§|textlocal-api|\[[ICV](?:\]|,)")
# `docs/<name>.md`, then optionally the quoted `## ` headings it cites: `, "Heading"`,
# ` ("Heading", "Other")` or `, "Heading" and "Other"`.
CITATION = re.compile(
    r'(?<![\w/.-])docs/([\w-]+\.md)(?:[,:]?\s*\(?)((?:"[^"]+"(?:,\s*|\s+and\s+)?)*)'
)


def python_files() -> list[Path]:
    return sorted(p for tree in CITING_TREES for p in (ROOT / tree).rglob("*.py"))


def prose(path: Path) -> list[tuple[int, str]]:
    """(first line, text) of every comment block and docstring of a Python file, each block's
    lines joined with single spaces so a citation wrapped over two lines reads as one."""
    source = path.read_text(encoding="utf-8")
    blocks: list[tuple[int, str]] = []
    last = -2
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        text = token.string.lstrip("#").strip()
        if token.start[0] == last + 1 and blocks:
            blocks[-1] = (blocks[-1][0], f"{blocks[-1][1]} {text}")
        else:
            blocks.append((token.start[0], text))
        last = token.start[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:
                blocks.append((node.body[0].lineno, " ".join(docstring.split())))
    return blocks


def headings(name: str) -> set[str]:
    text = (ROOT / "docs" / name).read_text(encoding="utf-8")
    return set(re.findall(r"^## (.+?)\s*$", text, flags=re.M))


def test_comments_cite_nothing_outside_the_repository() -> None:
    # Comments and docstrings only: GSM 03.38's alphabet has a real section sign in it.
    found = [
        f"{path.relative_to(ROOT)}:{line}: {match.group()!r}"
        for path in python_files()
        for line, text in prose(path)
        for match in FOREIGN.finditer(text)
    ]
    for path in [ROOT / "README.md", *sorted((ROOT / "benchmarks").glob("*.md"))]:
        found += [
            f"{path.relative_to(ROOT)}: {match.group()!r}"
            for match in FOREIGN.finditer(path.read_text(encoding="utf-8"))
        ]
    assert found == [], "cite docs/provider-api.md or docs/contract.md instead"


def test_every_cited_docs_file_and_heading_exists() -> None:
    texts = [
        (f"{path.relative_to(ROOT)}:{line}", text)
        for path in python_files()
        for line, text in prose(path)
    ]
    cited = 0
    problems = []
    for where, text in texts:
        for match in CITATION.finditer(text):
            name = match.group(1)
            if not (ROOT / "docs" / name).is_file():
                problems.append(f"{where}: docs/{name} does not exist")
                continue
            for heading in re.findall(r'"([^"]+)"', match.group(2)):
                cited += 1
                if heading not in headings(name):
                    problems.append(f'{where}: docs/{name} has no "## {heading}"')
    # Every docs/ file named anywhere in pipeline/, code included, must exist too.
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        for match in CITATION.finditer(path.read_text(encoding="utf-8")):
            if not (ROOT / "docs" / match.group(1)).is_file():
                problems.append(f"{path.relative_to(ROOT)}: docs/{match.group(1)} does not exist")
    assert problems == []
    assert cited > 50, "the citation pattern no longer finds the code's citations"
