"""The teaching notebooks read as a learner sees them: no test scaffolding in the code, no bare
object reprs in the outputs, no line past the cell's edge, and Run All leaves a working panel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

EVERY_NOTEBOOK = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NOTEBOOKS = [p for p in EVERY_NOTEBOOK if p.name[:2] <= "07"]  # the teaching notebooks this file's layout rules cover
BARE_REPR = re.compile(r"^<[\w.]+( object)? at 0x[0-9a-fA-F]+>$")
MAX_LINE = 100  # JupyterLab's default cell width at a laptop's resolution shows about this many characters


def cells(notebook: Path) -> list[dict[str, Any]]:
    return list(json.loads(notebook.read_text(encoding="utf-8"))["cells"])


def source(cell: dict[str, Any]) -> str:
    return "".join(cell["source"])


def test_there_are_seven_teaching_notebooks() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbval_marks_are_cell_tags_not_comments(notebook: Path) -> None:
    code = [c for c in cells(notebook) if c["cell_type"] == "code"]
    assert not [source(c).splitlines()[0] for c in code if source(c).lstrip().upper().startswith("# NBVAL")]
    assert any("nbval-check-output" in c["metadata"].get("tags", []) for c in code)


@pytest.mark.parametrize("notebook", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_no_output_is_a_bare_object_repr(notebook: Path) -> None:
    bare = []
    for index, cell in enumerate(cells(notebook)):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text = "".join(data.get("text/plain", "")).strip()
            # A repr is fine beside a rich view (a widget, HTML, an image); alone it tells a learner nothing.
            if set(data) == {"text/plain"} and BARE_REPR.match(text):
                bare.append((index, text))
    assert not bare


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_lines_fit_the_cell(notebook: Path) -> None:
    long = [(i, line) for i, c in enumerate(cells(notebook)) if c["cell_type"] == "code" for line in source(c).splitlines() if len(line) > MAX_LINE]
    assert not long


def test_run_all_in_the_panel_notebook_leaves_its_server_running() -> None:
    (panel_notebook,) = [p for p in NOTEBOOKS if p.name.startswith("06_")]
    code = [source(c) for c in cells(panel_notebook) if c["cell_type"] == "code"]
    assert not [c for c in code if re.search(r"^\s*server\.stop\(\)", c, re.MULTILINE)]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_ends_with_exercises_and_hidden_solutions(notebook: Path) -> None:
    all_cells = cells(notebook)
    solutions = [i for i, c in enumerate(all_cells) if "solution" in c["metadata"].get("tags", [])]
    assert 2 <= len(solutions) <= 3
    for index in solutions:
        cell = all_cells[index]
        assert cell["cell_type"] == "code" and cell["metadata"].get("jupyter", {}).get("source_hidden") is True
        assert cell["outputs"], "a solution runs (nbval executes it) and its stored output shows what to expect"
        prompt = "".join(all_cells[index - 2]["source"])
        assert all_cells[index - 2]["cell_type"] == "markdown" and prompt.startswith("**Exercise")
    heading = max(i for i, c in enumerate(all_cells) if c["cell_type"] == "markdown" and source(c).startswith("## Exercises"))
    # Only clean-up (and its note) may follow the last solution.
    assert heading < solutions[0] and len(all_cells) - solutions[-1] <= 3
