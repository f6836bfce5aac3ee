"""Every notebook renders as intended: each markdown cell goes through nbconvert's HTML exporter (the same Markdown
renderer and template family as JupyterLab's HTML export) and the result is inspected.

A notebook fails when
* prose became a code block: a cell renders more ``<pre>`` blocks than it has fenced code blocks (``` or ~~~), which
  happens when lines are indented by 4 spaces or more outside a list (finding 1 of issue 13: titles indented by 8
  spaces showed as monospace text with literal ``**``);
* Markdown was left unrendered: a literal ``**`` in the rendered prose;
* its first cell is not a Markdown cell whose rendered text starts with a level-1 heading (the notebook's title).

Checked: the student release ``notebooks/``, the executed ``solutions/``, nbgrader's ``autograder/source`` and the
text sources ``autograder/src`` (read as the build reads them).
"""

from __future__ import annotations

import re
from pathlib import Path

import bs4
import nbformat
import pytest
from nbconvert import HTMLExporter

from gptedu.grading import build

ROOT = build.REPO_ROOT
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _notebooks() -> list[tuple[str, Path]]:
    found = []
    for folder in ("notebooks", "solutions"):
        found += [(f"{folder}/{p.name}", p) for p in sorted((ROOT / folder).glob("[0-9][0-9]_*.ipynb"))]
    found += [(str(p.relative_to(ROOT)), p) for p in sorted((ROOT / "autograder" / "source").glob("*/*.ipynb"))]
    found += [(str(p.relative_to(ROOT)), p) for p in sorted(build.sources_dir(ROOT).glob("*/[0-9][0-9]_*.py"))]
    return found


def _read(path: Path) -> nbformat.NotebookNode:
    return build.read_source(path) if path.suffix == ".py" else nbformat.read(path, as_version=4)


def fenced_blocks(markdown: str) -> int:
    """Number of fenced code blocks in ``markdown`` (an unclosed fence still renders as one block)."""
    count, open_fence = 0, None
    for line in markdown.splitlines():
        match = _FENCE.match(line)
        if not match:
            continue
        fence = match.group(1)
        if open_fence is None:
            open_fence, count = fence, count + 1
        elif fence[0] == open_fence[0] and len(fence) >= len(open_fence) and not line.strip()[len(fence):].strip():
            open_fence = None
    return count


def render_markdown_cells(nb: nbformat.NotebookNode) -> list[tuple[int, bs4.Tag]]:
    """(cell index, rendered Markdown element) for every markdown cell, via nbconvert's HTML exporter."""
    indices = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    only_markdown = nbformat.v4.new_notebook(metadata=nb.metadata)
    for n, i in enumerate(indices):
        cell = nbformat.v4.new_markdown_cell(nb.cells[i].source)
        cell.id = f"m{n}"
        only_markdown.cells.append(cell)
    html, _ = HTMLExporter(template_name="lab").from_notebook_node(only_markdown)
    rendered = bs4.BeautifulSoup(html, "html.parser").select("div.jp-RenderedMarkdown")
    assert len(rendered) == len(indices), "the exporter did not render one block per markdown cell"
    return list(zip(indices, rendered, strict=True))


def render_problems(nb: nbformat.NotebookNode) -> list[str]:
    """What renders wrongly in ``nb``, one line per problem naming the cell (empty when all is well)."""
    problems = []
    rendered = render_markdown_cells(nb)
    first = rendered[0][1].find(True) if rendered and rendered[0][0] == 0 else None
    first_tag = None if first is None else first.name
    for index, element in rendered:
        source = nb.cells[index].source
        blocks = element.find_all("pre")
        if len(blocks) > fenced_blocks(source):
            first = next((b.get_text().strip().splitlines() or [""])[0] for b in blocks)
            problems.append(f"cell {index}: prose renders as a code block ({len(blocks)} <pre>, "
                            f"{fenced_blocks(source)} fenced): {first[:70]!r} — remove the leading indentation")
        for code in element.find_all(["pre", "code"]):
            code.decompose()
        if "**" in element.get_text():
            problems.append(f"cell {index}: a literal ** in the rendered text (bold markup not rendered)")
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        problems.append("cell 0: the first cell must be a markdown cell with the notebook's # title")
    elif first_tag != "h1":
        found = "nothing" if first_tag is None else f"<{first_tag}>"
        problems.append(f"cell 0: the first cell must start with a level-1 heading (# Title), found {found}")
    return problems


@pytest.mark.parametrize("label,path", _notebooks(), ids=[label for label, _ in _notebooks()])
def test_markdown_renders_as_intended(label, path):
    problems = render_problems(_read(path))
    assert not problems, f"{label} does not render as intended:\n  " + "\n  ".join(problems)


def test_every_folder_is_checked():
    labels = [label for label, _ in _notebooks()]
    for prefix in ("notebooks/", "solutions/", "autograder/source/", "autograder/src/"):
        assert sum(label.startswith(prefix) for label in labels) == 14, prefix


# The header of notebook 03 as it was committed before issue 13 (indented by 8 spaces).
_BROKEN_HEADER = """        # 03 · One head of masked self-attention

        *Part 1 of "Building a GPT from scratch" (assignment `gpt_from_scratch`, notebooks 01–09).*

        **Points in this notebook: 20** (self-check 10 + hidden tests 10). **Series total: 145 points.**

        A transformer reads a sequence of vectors, one per character. Attention lets every position gather
information from the positions before it, with weights it computes from the data."""


def _nb(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=list(cells))


def test_the_check_catches_what_renders_wrongly():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    problems = render_problems(_nb(md(_BROKEN_HEADER), code("x = 1")))
    assert any("cell 0: prose renders as a code block" in p and "# 03" in p for p in problems), problems
    assert any("cell 0: the first cell must start with a level-1 heading" in p for p in problems), problems
    assert render_problems(_nb(md("# Title\n\n## Section"), code("x = 1"))) == []
    fenced = ("# Title\n\n```python\nx = 1\n```\n\n~~~\nplain\n~~~\n\n"
              "* a list item\n    continued on an indented line\n* and a second item")
    assert render_problems(_nb(md(fenced))) == []
    indented_later = render_problems(_nb(md("# Title"), md("Some prose.\n\n    indented prose")))
    assert indented_later and indented_later[0].startswith("cell 1: prose renders as a code block"), indented_later
    assert any("literal **" in p for p in render_problems(_nb(md("# Title"), md("**not bold ** here"))))
    assert "found <h2>" in render_problems(_nb(md("## Only a section")))[0]
    assert "the first cell must be a markdown cell" in render_problems(_nb(code("x = 1"), md("# Title")))[0]
