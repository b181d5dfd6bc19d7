"""Pairs of submissions whose answers are nearly the same text: a signal for the instructor to look at, not a verdict.

Only what a student wrote is compared: the answer cells (nbgrader solution cells, matched by grade_id), with the
release's own lines taken out (the ``def …:`` stub, ``# YOUR CODE HERE``…). Code keeps its comments (identical
comments are a strong signal), loses blank lines, indentation width and trailing spaces; prose is compared in lower
case with its punctuation and spacing normalised. Short answers (``q1_answer = "B"``) and answers that many students
share word for word (the expected one-liner) say nothing about copying and are left out.

The measure is RapidFuzz's normalised Indel similarity (``fuzz.ratio``, 0–100), computed for all pairs at once
(``process.cdist``); a pair's similarity is the mean over the answers both gave, weighted by their length.
"""

import io
import json
import re
import tokenize
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

MIN_CHARS = 40          # a shorter answer (after normalising) is not compared
MIN_TOTAL_CHARS = 120   # a pair is reported only when this much text was compared
THRESHOLD = 90.0        # percent
COMMON_SHARE = 0.2      # an answer given word for word by this share of the class (and at least 3) is "common"


@dataclass(frozen=True)
class SimilarPair:
    first: str
    second: str
    similarity: float        # percent, length-weighted over the compared answers
    answers: tuple           # "notebook:grade_id" of the compared answers
    identical: tuple         # those that are identical after normalising


def _code(text):
    lines = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        kept = [t.string for t in tokens if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                                          tokenize.DEDENT, tokenize.ENDMARKER)]
        return " ".join(kept)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        for line in text.splitlines():
            if line.strip():
                lines.append(" ".join(line.split()))
        return " ".join(lines)


def _prose(text):
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def normalise(source, stub, cell_type):
    """The student's own part of an answer cell, normalised."""
    own = "\n".join(line for line in source.splitlines() if line.strip() and line.strip() not in stub)
    return _code(own) if cell_type == "code" else _prose(own)


def answer_cells(release):
    """grade_id -> (cell type, set of the release's stripped lines) for the release's answer cells."""
    cells = {}
    for cell in release.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id"):
            source = "".join(cell.get("source", "")) if isinstance(cell.get("source"), list) else cell.get("source", "")
            cells[meta["grade_id"]] = (cell.get("cell_type"), {line.strip() for line in source.splitlines() if line.strip()})
    return cells


def student_answers(path, cells):
    """grade_id -> normalised answer of a submitted notebook (nothing for a file that is not a notebook)."""
    try:
        notebook = json.loads(path.read_bytes())
        found = {}
        for cell in notebook.get("cells", []):
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id in cells:
                source = cell.get("source", "")
                source = "".join(source) if isinstance(source, list) else str(source)
                cell_type, stub = cells[grade_id]
                found[grade_id] = normalise(source, stub, cell_type)
        return found
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def similar_pairs(answers, threshold=THRESHOLD):
    """``answers``: {student: {"notebook:grade_id": normalised text}} -> [SimilarPair], most similar first."""
    students = sorted(answers)
    if len(students) < 2:
        return []
    keys = sorted({key for texts in answers.values() for key in texts})
    n = len(students)
    weighted, weights = np.zeros((n, n)), np.zeros((n, n))
    common_count = max(3, int(np.ceil(COMMON_SHARE * n)))
    compared = {}  # key -> (texts, usable mask)
    for key in keys:
        texts = [answers[s].get(key, "") for s in students]
        counts = {}
        for text in texts:
            counts[text] = counts.get(text, 0) + 1
        usable = np.array([len(t) >= MIN_CHARS and counts[t] < common_count for t in texts])
        if usable.sum() < 2:
            continue
        compared[key] = (texts, usable)
        index = np.flatnonzero(usable)
        scores = process.cdist([texts[i] for i in index], [texts[i] for i in index], scorer=fuzz.ratio, workers=1)
        lengths = np.array([len(texts[i]) for i in index], dtype=float)
        pair_weight = (lengths[:, None] + lengths[None, :]) / 2
        cells = np.ix_(index, index)
        weighted[cells] += scores * pair_weight
        weights[cells] += pair_weight
    similarity = np.divide(weighted, weights, out=np.zeros_like(weighted), where=weights > 0)
    pairs = []
    for a, b in zip(*np.nonzero(np.triu((weights >= MIN_TOTAL_CHARS) & (similarity >= threshold), k=1))):
        shared = [key for key, (texts, usable) in compared.items() if usable[a] and usable[b]]
        pairs.append(SimilarPair(students[a], students[b], round(float(similarity[a, b]), 1), tuple(shared),
                                 tuple(key for key in shared if compared[key][0][a] == compared[key][0][b])))
    return sorted(pairs, key=lambda p: (-p.similarity, p.first, p.second))
