"""The notebooks run top to bottom on the example data and use only the public API.

Each notebook is executed with nbclient in a temporary copy of the repository layout
(`input/` beside `notebooks/`), so it reads the committed example files and writes only under
the temporary directory. The committed files must carry no outputs (cookiecutter-data-science:
notebooks explain; the code they call lives in the package).
"""

from __future__ import annotations

import ast
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

import pipeline
from tests.helpers import REPO

pytestmark = pytest.mark.slow  # end to end: real CLI runs, subprocesses, servers

NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(path.name for path in NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell; each notebook takes a few seconds in all
DEMO = Path("output") / "notebook-demo"  # where notebook 02 writes; it starts by deleting it
STALE = DEMO / "left-by-an-earlier-run.txt"
DELIVERY_STATUSES = {"delivered", "undelivered", "pending", "invalid", "expired", "unknown"}
# What a notebook may import: the package, and plain tools for showing and plotting.
ALLOWED_MODULES = {"pipeline", "pandas", "matplotlib.pyplot", "pathlib", "shutil", "time"}

Run = Callable[[str], tuple[nbformat.NotebookNode, Path]]


def execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    """Run every cell of `nb` in a fresh python3 kernel with `cwd` as its directory."""
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Execute a notebook once per test module in a copy of the layout; (notebook, root).

    The copy holds `input/`, the notebook in `notebooks/`, and an `output/` left by an
    earlier run, as a working checkout would.
    """
    done: dict[str, tuple[nbformat.NotebookNode, Path]] = {}

    def run_one(name: str) -> tuple[nbformat.NotebookNode, Path]:
        if name not in done:
            root = tmp_path_factory.mktemp(Path(name).stem)
            shutil.copytree(REPO / "input", root / "input")
            (root / STALE).parent.mkdir(parents=True)
            (root / STALE).write_text("an earlier run's output\n", encoding="utf-8")
            (root / "notebooks").mkdir()
            shutil.copy(NOTEBOOK_DIR / name, root / "notebooks" / name)
            nb = nbformat.read(root / "notebooks" / name, as_version=4)
            done[name] = (execute(nb, root / "notebooks"), root)
        return done[name]

    return run_one


def text_outputs(nb: nbformat.NotebookNode) -> str:
    """Everything the code cells printed or displayed as text, in order."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "data" in output:
                parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def images(nb: nbformat.NotebookNode) -> int:
    """How many PNG images (plots) the notebook displayed."""
    return sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


def api_problems(source: str) -> list[str]:
    """What in one code cell goes past the public API or imports something not allowed."""
    tree = ast.parse(TransformerManager().transform_cell(source))  # %magics become calls
    public = set(pipeline.__all__)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in ALLOWED_MODULES:
                    problems.append(f"import {alias.name}")
                elif alias.name == "pipeline" and alias.asname:
                    problems.append(f"import pipeline as {alias.asname}: use pipeline.<name>")
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.module not in ALLOWED_MODULES or node.level:
                problems.append(f"from {'.' * node.level}{node.module or ''} import ...")
            problems += [
                f"from {node.module} import {name}"
                for name in names
                if name.startswith("_") or (node.module == "pipeline" and name not in public)
            ]
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                problems.append(f"private attribute .{node.attr}")
            elif (
                isinstance(node.value, ast.Name)
                and node.value.id == "pipeline"
                and node.attr not in public
            ):
                problems.append(f"pipeline.{node.attr} is not in pipeline.__all__")
    return problems


def code_cells(name: str) -> list[str]:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def test_the_notebooks_are_found() -> None:
    assert NOTEBOOKS == ["01-explore-contacts.ipynb", "02-send-and-review.ipynb"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert (cell.outputs, cell.execution_count) == ([], None), cell.source[:60]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_uses_only_the_public_api(name: str) -> None:
    problems = [problem for source in code_cells(name) for problem in api_problems(source)]
    assert problems == []
    assert any("pipeline." in source for source in code_cells(name))


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("from pipeline.job import finish", "from pipeline.job import ..."),
        ("import pipeline.job", "import pipeline.job"),
        ("from pipeline import _EXPORTS", "from pipeline import _EXPORTS"),
        ("from pipeline import finish", "from pipeline import finish"),
        ("import pipeline\npipeline.finish(1)", "pipeline.finish is not in pipeline.__all__"),
        ("prepared._rows", "private attribute ._rows"),
        ("import pipeline as p", "import pipeline as p: use pipeline.<name>"),
        ("import sqlite3", "import sqlite3"),
        ("from . import x", "from . import ..."),
    ],
)
def test_the_api_check_catches(source: str, problem: str) -> None:
    assert api_problems(source) == [problem]


def test_the_api_check_passes_public_calls_and_magics() -> None:
    source = (
        "%matplotlib inline\nimport pipeline\nfrom pathlib import Path\n"
        "import matplotlib.pyplot as plt\nprepared = pipeline.load(Path('a'), 'b')\n"
        "prepared.results.status.value_counts()"
    )
    assert api_problems(source) == []


def test_the_kernel_is_this_interpreter() -> None:
    # ipykernel's python3 kernelspec must start the same venv python that runs the tests,
    # else the notebooks would import some other installation of `pipeline`.
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import sys, pipeline; print(sys.executable); print(pipeline.__file__)"
            )
        ]
    )
    execute(nb, REPO)
    assert nb.cells[0].outputs[0].text.splitlines() == [sys.executable, pipeline.__file__]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_without_errors(run: Run, name: str) -> None:
    nb, _ = run(name)
    counts = [cell.execution_count for cell in nb.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))
    assert not [o for cell in nb.cells for o in cell.get("outputs", []) if o.output_type == "error"]


def test_explore_notebook_shows_the_breakdown_and_the_cost(run: Run) -> None:
    nb, root = run("01-explore-contacts.ipynb")
    text = text_outputs(nb)
    assert "39 rows read from contacts.xlsx, worksheet 'Contacts'" in text
    assert "32 messages, 33 credits, 1 in Unicode" in text
    assert "7 of 39 rows will not be sent" in text
    assert "same number as row 2" in text
    assert "Amount is empty" in text
    assert "scientific notation: digits were lost in Excel" in text
    assert images(nb) == 2
    # It writes nothing: the layout holds what it held before.
    assert sorted(path.name for path in root.iterdir()) == ["input", "notebooks", "output"]
    assert sorted(p.relative_to(root) for p in (root / "output").rglob("*")) == [DEMO, STALE]


def test_send_notebook_sends_collects_receipts_and_plots(run: Run) -> None:
    nb, root = run("02-send-and-review.ipynb")
    demo = root / DEMO
    assert not (root / STALE).exists()  # the demo starts clean
    table = pipeline.read_results(demo / "contacts-results.xlsx")
    assert table["status"].value_counts().to_dict() == {
        "sent": 32,
        "invalid_number": 5,
        "duplicate": 1,
        "missing_field": 1,
    }
    sent = table["status"] == "sent"
    # Receipts were collected: every sent row has a delivery status, no other row has one.
    assert set(table.loc[sent, "delivery_status"]) <= DELIVERY_STATUSES
    assert table.loc[~sent, "delivery_status"].isna().all()
    assert table.loc[sent, "delivered_at"].notna().all()
    delivered = int((table.loc[sent, "delivery_status"] == "delivered").sum())
    pending = int((table.loc[sent, "delivery_status"] == "pending").sum())
    assert delivered > 0
    text = text_outputs(nb)
    assert "ready to send: 32 messages, 33 credits" in text
    assert "handed to the provider: 32; credits left: 9967" in text
    assert "second run handed to the provider: 0 messages" in text  # the journal resumed
    assert f"; {pending} still pending" in text
    assert f"{delivered} of 32 delivered: delivery rate {delivered / 32:.0%}" in text
    assert images(nb) == 2
    assert (demo / "contacts-results-rerun.xlsx").is_file()
    assert (demo / "journal.sqlite").is_file() and (demo / "sandbox-outbox.sqlite").is_file()
