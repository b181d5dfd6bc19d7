"""Score distributions per question from nbgrader's gradebook: a PNG and a text summary."""

import statistics

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np


def question_scores(workspace, assignment):
    """{(notebook, grade_id): (max points, [score per submission])} and the totals list."""
    questions, totals = {}, []
    with workspace.gradebook() as gradebook:
        assignment_row = gradebook.find_assignment(assignment)
        for submission in assignment_row.submissions:
            totals.append((submission.student.id, submission.score, submission.max_score))
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    key = (notebook.name, grade.name)
                    points = grade.max_score
                    questions.setdefault(key, (points, []))[1].append(grade.score)
    return questions, sorted(totals)


def write_report(workspace, assignment, png_path, text_path):
    questions, totals = question_scores(workspace, assignment)
    if not totals:
        raise ValueError(f"no graded submissions of '{assignment}' in the gradebook: run autograde first")
    keys = sorted(questions)
    columns = 4
    rows = int(np.ceil(len(keys) / columns))
    figure = Figure(figsize=(3.2 * columns, 2.4 * rows + 0.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, key in zip(axes, keys):
        points, scores = questions[key]
        levels = sorted({0.0, float(points), *map(float, scores)})
        counts = [sum(1 for s in scores if float(s) == level) for level in levels]
        ax.bar([f"{level:g}" for level in levels], counts, color="tab:blue")
        ax.set_title(f"{key[0]}: {key[1]}", fontsize=8)
        ax.set_xlabel(f"points (of {points:g})", fontsize=8)
        ax.set_ylabel("submissions", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    figure.suptitle(f"'{assignment}': score distribution per question ({len(totals)} submissions)")
    figure.savefig(png_path, dpi=100)

    scores = [score for _, score, _ in totals]
    maximum = totals[0][2]
    lines = [f"Assignment '{assignment}': {len(totals)} submissions, maximum {maximum:g} points",
             f"total: mean {statistics.mean(scores):.2f}, median {statistics.median(scores):.2f}, "
             f"min {min(scores):g}, max {max(scores):g}", "", "per question (mean points / maximum, share of full marks):"]
    for key in keys:
        points, values = questions[key]
        values = [float(v) for v in values]
        full = sum(1 for v in values if v == points) / len(values)
        lines.append(f"  {key[0]:28s} {key[1]:18s} {statistics.mean(values):5.2f} / {points:g}   {full:6.1%} full")
    text = "\n".join(lines) + "\n"
    text_path.write_text(text)
    return text
