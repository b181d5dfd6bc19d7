"""The claims register (tests/claims.toml) and the prose that makes the claims (README.md, the lessons).

A claim is tagged in the Markdown right after the sentence(s) that make it, with an HTML comment that
renders as nothing: ``<!-- claim: id -->`` or ``<!-- claim: id, other-id -->``. Prose that states no
fact (an instruction, a question, a learning objective) says so: ``<!-- claim: none -->``.

The unit a tag covers is a *block* as a Markdown parser sees it (markdown-it-py, CommonMark + tables):

* a paragraph (also one in a list item): tagged when its own text holds a tag, or when the HTML comment
  right below it (``<!-- claim: ... -->`` on its own line) does;
* a list, a table or a block quote at the top level: tagged as a whole when the next block is an HTML
  comment holding a tag.

Headings, code blocks, HTML that holds no text outside its tags (``<details>``; a ``<summary>``'s label)
and paragraphs that are only a display formula (``$$ ... $$``) need no tag: the claim is the sentence that
introduces them. HTML that holds text (``<p>...</p>`` in one block) needs a tag inside it.

The register holds, for each id, the claim in short (``text``) and what backs it (``backed_by``):
pytest node ids (``tests/test_x.py::test_y``; the test acknowledges the claim with
``@pytest.mark.claim("id")``) or figures of committed benchmark output
(``benchmarks/results/<file>.json:<key.path>``, optionally compared: ``... >= 8``).
"""

import ast
import json
import operator
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import nbformat
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
REGISTER = ROOT / "tests" / "claims.toml"
README = ROOT / "README.md"
NONE = "none"
TAG = re.compile(r"<!--\s*claim:\s*(.*?)\s*-->", re.S)
# A navigation cell is written by tools/update_course_pages.py and tested by tests/test_course_pages.py.
GENERATED_CELL = re.compile(r"<!-- course-navigation: ")
# benchmarks/results/<file>.json:<key>[.<key>...] [op value]; a key may hold spaces (a widget's name), not ':<>='
BENCHMARK = re.compile(r"^(?P<file>benchmarks/results/[\w.-]+\.json):(?P<key>[^:<>=]+?)"
                       r"(?:\s*(?P<op>>=|<=|==|>|<)\s*(?P<value>\S+))?$")
COMPARE = {">=": operator.ge, "<=": operator.le, "==": operator.eq, ">": operator.gt, "<": operator.lt}
_PARSER = MarkdownIt("commonmark").enable("table")
_CONTAINERS = {"bullet_list_open", "ordered_list_open", "table_open", "blockquote_open"}
_NOT_TEXT = re.compile(r"<!--.*?-->|<summary>.*?</summary>|<[^>]+>", re.S)


@dataclass(frozen=True)
class Block:
    """A piece of prose that must be tagged: where it is, its text, and the claim ids that cover it."""
    where: str
    text: str
    ids: tuple

    def short(self):
        return f"{self.where}: {' '.join(self.text.split())[:90]!r}"


def tag_ids(text):
    """The claim ids of every tag in ``text``, in order ('none' included); a tag shown as code (in backticks, as
    an example of the syntax) is not a tag."""
    shown = re.sub(r"`[^`]*`", "", text)
    return [part.strip() for found in TAG.findall(shown) for part in found.split(",") if part.strip()]


def lessons():
    return sorted((ROOT / "course").glob("[0-9][0-9]-*.ipynb"))


def documents():
    """[(name, Markdown)] of everything a reader reads as prose: README.md and every lesson's Markdown cells."""
    found = [("README.md", README.read_text())]
    for path in lessons():
        notebook = nbformat.read(path, as_version=4)
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "markdown" and not GENERATED_CELL.match(cell.source):
                found.append((f"course/{path.name} cell {index} ({cell.id})", cell.source))
    return found


def _is_formula(text):
    stripped = text.strip()
    return stripped.startswith("$$") and stripped.endswith("$$")


def blocks(name, markdown):
    """Every block of ``markdown`` that must carry a tag, with the ids that cover it."""
    tokens = _PARSER.parse(markdown)
    lines = markdown.splitlines()

    def tags_below(close_index):
        following = tokens[close_index + 1] if close_index + 1 < len(tokens) else None
        return tag_ids(following.content) if following is not None and following.type == "html_block" else []

    def closing(open_index):
        opened = tokens[open_index]
        close = opened.type.replace("_open", "_close")
        end = open_index + 1
        while not (tokens[end].type == close and tokens[end].level == opened.level):
            end += 1
        return end

    covered = {}  # token index of a paragraph -> ids of the tag below its top-level list, table or quote
    found = []
    for index, token in enumerate(tokens):
        if token.level == 0 and token.type in _CONTAINERS:
            end = closing(index)
            below = tags_below(end)
            if token.type == "table_open":
                source = "\n".join(lines[token.map[0]:token.map[1]])
                found.append(Block(f"{name}, line {token.map[0] + 1}", source, tuple(below or tag_ids(source))))
            else:
                covered.update(dict.fromkeys(range(index, end), tuple(below)))
        elif token.type == "html_block" and _NOT_TEXT.sub("", token.content).strip():
            found.append(Block(f"{name}, line {token.map[0] + 1}", token.content, tuple(tag_ids(token.content))))
        elif token.type == "paragraph_open" and not (tokens[index - 1].type == "td_open" if index else False):
            inline = tokens[index + 1]
            if _is_formula(inline.content) and not tag_ids(inline.content):
                continue
            ids = tag_ids(inline.content) or tags_below(closing(index)) or covered.get(index, ())
            found.append(Block(f"{name}, line {inline.map[0] + 1}", inline.content, tuple(ids)))
    return found


def all_blocks():
    return [block for name, markdown in documents() for block in blocks(name, markdown)]


def all_tags():
    """{claim id: [document names that tag it]} over every tag in the documents (generated cells too)."""
    used = {}
    for name, markdown in documents():
        for claim in tag_ids(markdown):
            used.setdefault(claim, []).append(name)
    return used


def register():
    """{claim id: {"text": ..., "backed_by": [...]}} from tests/claims.toml."""
    return tomllib.loads(REGISTER.read_text())["claims"]


def _marker_ids(decorator):
    """Claim ids of a ``@pytest.mark.claim("a", "b")`` decorator node, else None."""
    if not isinstance(decorator, ast.Call):
        return None
    function = decorator.func
    if not (isinstance(function, ast.Attribute) and function.attr == "claim"
            and isinstance(function.value, ast.Attribute) and function.value.attr == "mark"):
        return None
    return [arg.value for arg in decorator.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]


def test_functions(path):
    """{node id: [claim ids its marker acknowledges]} for every test function (and Test* class method) of a file."""
    relative = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text())
    found = {}

    def visit(body, prefix, inherited):
        for node in body:
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                marked = [i for d in node.decorator_list for i in (_marker_ids(d) or [])]
                visit(node.body, f"{prefix}{node.name}::", inherited + marked)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                marked = [i for d in node.decorator_list for i in (_marker_ids(d) or [])]
                found[f"{relative}::{prefix}{node.name}"] = inherited + marked

    module_marks = []
    for node in tree.body:  # pytestmark = pytest.mark.claim(...) or [ ... ]
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            module_marks += [i for v in values for i in (_marker_ids(v) or [])]
    visit(tree.body, "", module_marks)
    return found


def all_test_functions():
    found = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        found.update(test_functions(path))
    return found


def benchmark_value(backing):
    """(value found or None, error message or None) for a ``benchmarks/results/...json:key [op value]`` backing."""
    match = BENCHMARK.match(backing)
    if not match:
        return None, f"not a test node id or a benchmark figure: {backing!r}"
    path = ROOT / match["file"]
    if not path.is_file():
        return None, f"{match['file']} is not committed"
    value = json.loads(path.read_text())
    for key in match["key"].split("."):
        if not isinstance(value, dict) or key not in value:
            return None, f"{match['file']} has no {match['key']!r}"
        value = value[key]
    if match["op"]:
        wanted = json.loads(match["value"])
        if not COMPARE[match["op"]](value, wanted):
            return value, f"{match['file']}:{match['key']} is {value!r}, not {match['op']} {wanted!r}"
    return value, None
