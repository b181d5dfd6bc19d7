"""Autograding throughput: course-grader (sandboxed, parallel) against stock ``nbgrader autograde``.

    .venv/bin/python benchmarks/bench_grader.py [--n 24] [--whole] [--workers K] [--no-profile] [--keep DIR]

Builds N synthetic submissions of compile-and-train's ``compile-for-the-task`` notebook (TensorFlow;
``--whole``: all three notebooks of the assignment) — right answers, misconceptions, and broken files
(a syntax error, an exception, a kernel that dies, an empty file, truncated JSON) — and puts the
same files into two identical workspaces (``course-grader init`` + roster + release). Then, in the
same run, one after the other:

* stock: ``nbgrader autograde compile-and-train --create --force`` from the first workspace;
* ours:  ``course-grader autograde compile-and-train`` (workers = cores) on the second.

Prints the seconds per submission of each and the throughput ratio (ours / stock; the target,
``TARGET``, is >= 4.5x on 2 cores), then compares the two gradebooks cell by cell for every submission
both graded (stock nbgrader gives up on some broken files: those are listed, with what we gave
them) and checks every score against the points the answer deserves. Then profiles where the time
of one submission goes in our path (the coordinator's nbgrader steps, a worker's start, and one
notebook in a warm worker: fork and isolation, cells, teardown; wall and CPU).

Writes the figures to benchmarks/results/bench_grader-nN[-whole].json (README's figures come from those
files, tools/update_readme_figures.py). Exit status: 1 if a score differs between the gradebooks or from the
expected points, 2 if only the throughput target is missed, 0 otherwise.
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from corpus.answer_variants import COMPILE, VARIANTS, pack_into_submissions as pack  # noqa: E402
from support.nbgrader_course import STOCK_AUTOGRADE, fill_answers  # noqa: E402

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}
ASSIGNMENT = "compile-and-train"
NOTEBOOK = "compile-for-the-task"
TARGET = 4.5
RESULTS = ROOT / "benchmarks" / "results"


# --------------------------------------------------------------------------- submissions

def solution_code(solutions, notebook):
    source = nbformat.read(solutions / ASSIGNMENT / f"{notebook}.ipynb", as_version=4)
    return {c.metadata.nbgrader["grade_id"]: c.source for c in source.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}


def full_points(solutions, notebook):
    source = nbformat.read(solutions / ASSIGNMENT / f"{notebook}.ipynb", as_version=4)
    return {c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"]) for c in source.cells
            if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata.nbgrader.get("solution")}


def kinds():
    """(label, answers or a special marker, expected points overrides) in the order they are used."""
    compile_variants = [v for v in VARIANTS if v.notebook == COMPILE]
    right = pack([v for v in compile_variants if v.kind == "right"])
    wrong = pack([v for v in compile_variants if v.kind != "right"])

    def from_pack(label, packed):
        return (label, {g: s for v in packed for g, s in v.cells.items()},
                {g: float(p) for v in packed for g, p in v.expect.items()})

    zero = {f"{task}_{what}": 0.0 for task in ("binary", "onehot", "integer", "regression")
            for what in ("model", "loss", "metric")}
    regression_zero = {k: v for k, v in zero.items() if k.startswith("regression")}
    specials = [
        ("broken: syntax error", {"binary_solution": "def binary_classifier(:\n    return None\n"},
         {k: v for k, v in zero.items() if k.startswith("binary")}),
        ("broken: exception", {"onehot_solution": "def onehot_classifier():\n    return 1 / 0\n"},
         {k: v for k, v in zero.items() if k.startswith("onehot")}),
        ("broken: empty file", b"", zero),
        ("broken: kernel dies (os._exit)", {"regression_solution": "import os\nos._exit(3)\n"}, regression_zero),
        ("broken: truncated JSON", "TRUNCATE", zero),
        ("wrong: nothing answered", "RELEASE", zero),
    ]
    ordered = [("right: the solution", {}, {})]
    while True:  # interleave right, wrong and broken so that any N gets a mix
        for index in range(max(len(right), len(wrong), (len(specials) + 1) // 2)):
            if index < len(wrong):
                ordered.append(from_pack(f"wrong: misconceptions #{index + 1}", wrong[index]))
            if 2 * index < len(specials):
                ordered.append(specials[2 * index])
            if index < len(right):
                ordered.append(from_pack(f"right: other valid answers #{index + 1}", right[index]))
            if 2 * index + 1 < len(specials):
                ordered.append(specials[2 * index + 1])
        yield from ordered
        ordered = [("right: the solution", {}, {})]


def write_submissions(n, release_folder, solutions, notebooks, target):
    """N submissions in target/<student>/<assignment>/; returns {student: (label, expected points)}."""
    plan = {}
    for index, (label, answers, expect) in zip(range(n), kinds()):
        student = f"s{index + 1:02d}"
        folder = target / student / ASSIGNMENT
        folder.mkdir(parents=True)
        expected = {}
        for notebook in notebooks:
            release = nbformat.read(release_folder / f"{notebook}.ipynb", as_version=4)
            points = full_points(solutions, notebook)
            path = folder / f"{notebook}.ipynb"
            if notebook != NOTEBOOK or answers == {}:
                answers_here = {}
            else:
                answers_here = answers
            if notebook == NOTEBOOK and isinstance(answers, bytes):
                path.write_bytes(answers)
            elif notebook == NOTEBOOK and answers == "TRUNCATE":
                text = nbformat.writes(fill(release, solution_code(solutions, notebook), {}))
                path.write_text(text[: len(text) // 2])
            elif notebook == NOTEBOOK and answers == "RELEASE":
                nbformat.write(release, path)
            else:
                nbformat.write(fill(release, solution_code(solutions, notebook), answers_here), path)
            if notebook == NOTEBOOK:
                points.update(expect)
            expected.update({(notebook, g): p for g, p in points.items()})
        plan[student] = (label, expected)
    return plan


def fill(release, code, answers):
    """The release with ``code`` (the solution) in its answer cells, ``answers`` taking precedence."""
    return fill_answers(nbformat.from_dict(release), {**code, **answers})


# --------------------------------------------------------------------------- workspaces

def run(argv, cwd=None, check=True):
    result = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, env=ENV)
    if check and result.returncode != 0:
        sys.exit(f"{' '.join(map(str, argv))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def make_workspace(folder, solutions, roster, stock=False):
    grader = BIN / "course-grader"
    run([grader, "init", folder, "--solutions", solutions])
    run([grader, "roster", roster, "--workspace", folder])
    run([grader, "release", ASSIGNMENT, "--workspace", folder])
    if stock:  # nbgrader's own Execute: the tests run in the student's kernel, no sandbox
        with open(folder / "nbgrader_config.py", "a") as config:
            config.write(STOCK_AUTOGRADE)
    return folder


def gradebook_scores(workspace, students):
    """{student: {(notebook, grade_id): auto_score}} for submissions with scored grade cells."""
    from grader.workspace import Workspace

    result = {}
    with Workspace(workspace).gradebook() as gradebook:
        for student in students:
            try:
                submission = gradebook.find_submission(ASSIGNMENT, student)
            except Exception:
                continue
            result[student] = {(nb.name, g.name): g.auto_score for nb in submission.notebooks
                               for g in nb.grades if g.auto_score is not None or g.cell.cell_type == "code"}
    return result


def stock_graded(workspace, student, notebooks):
    folder = workspace / "autograded" / student / ASSIGNMENT
    return all((folder / f"{nb}.ipynb").is_file() for nb in notebooks)


# --------------------------------------------------------------------------- profile

def _system_cpu_seconds():
    """CPU seconds all processes of the machine have used (what a job costs across its processes)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def _timestamp(value):
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def profile(workspace, repeats=3):
    """Where one submission's time goes in our path, run alone (no other sandbox running).
    Each step is run ``repeats`` times; the minimum is reported (the machine may be shared)."""
    from grader import forkserver, score
    from grader.limits import Limits
    from grader.rebuild import prepare
    from grader.submissions import plan
    from grader.workspace import Workspace

    ws = Workspace(workspace)
    samples = {}

    def add(name, seconds):
        samples.setdefault(name, []).append(seconds)

    limits = Limits()
    jobs, _ = plan(ws, ASSIGNMENT)
    for graded_job in jobs:  # nbgrader's scoring step runs on the notebooks already executed
        path = ws.root / "autograded" / graded_job.student / ASSIGNMENT / f"{graded_job.notebook}.ipynb"
        graded_job.executed = nbformat.read(path, as_version=4) if path.is_file() else None
    mine = [j for j in jobs if j.student == "s01"]
    for _ in range(repeats):
        started = time.perf_counter()
        run([BIN / "course-grader", "--help"])
        add("course-grader start-up (--help; imports nbgrader)", time.perf_counter() - started)
        started = time.perf_counter()
        prepare(ws, jobs)
        add("coordinator: read, rebuild, nbgrader sanitize, per notebook", (time.perf_counter() - started) / len(jobs))
        started = time.perf_counter()
        score.score_student(ws, ASSIGNMENT, "s01", mine)
        add("coordinator: nbgrader scoring into the gradebook, per student", time.perf_counter() - started)

    job = next(j for j in jobs if j.student == "s01" and j.notebook == NOTEBOOK)
    notebook_json, settings = nbformat.writes(job.prepared), score.settings_for(ws, limits)
    for _ in range(repeats):
        server = forkserver.ForkServer()
        try:
            started = time.perf_counter()
            server.wait_ready()
            add("worker sandbox start: launch, bwrap, zygote imports TensorFlow (once per worker)",
                time.perf_counter() - started)
            for _ in range(repeats):
                cpu, started = _system_cpu_seconds(), time.time()
                executed = nbformat.reads(server.run(notebook_json, settings, limits)[0], as_version=4)
                finished, cpu = time.time(), _system_cpu_seconds() - cpu
                timing = [c.metadata.get("execution", {}) for c in executed.cells
                          if c.cell_type == "code" and c.metadata.get("execution")]
                first, last = _timestamp(timing[0]["iopub.status.busy"]), _timestamp(timing[-1]["iopub.status.idle"])
                add("one notebook, warm worker: fork kernel side + driver, isolate, kernel ready", first - started)
                add("  its cells run, its 12 tests judged by requests to the kernel", last - first)
                add("  kernel killed, cgroup emptied, results back", finished - last)
                add("= one notebook, warm worker, wall", finished - started)
                add("= one notebook, warm worker, CPU of all its processes", cpu)
        finally:
            server.remove()
    return {name: min(values) for name, values in samples.items()}


# --------------------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=24, help="submissions (default 24: a class section)")
    parser.add_argument("--whole", action="store_true", help="all three notebooks of compile-and-train")
    parser.add_argument("--workers", type=int, default=None, help="course-grader workers (default: cores)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep the workspaces in this folder")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-grader-")) if not args.keep else args.keep.resolve()
    root.mkdir(parents=True, exist_ok=True)
    notebooks = sorted(p.stem for p in (ROOT / "solutions" / ASSIGNMENT).glob("*.ipynb")) if args.whole else [NOTEBOOK]
    solutions = root / "solutions"
    (solutions / ASSIGNMENT).mkdir(parents=True, exist_ok=True)
    for notebook in notebooks:
        shutil.copy(ROOT / "solutions" / ASSIGNMENT / f"{notebook}.ipynb", solutions / ASSIGNMENT)
    roster = root / "roster.csv"
    roster.write_text("id\n" + "".join(f"s{i + 1:02d}\n" for i in range(args.n)))
    try:
        with ThreadPoolExecutor(2) as pool:
            stock_ws, ours_ws = pool.map(lambda name: make_workspace(root / name, solutions, roster,
                                                                     stock=name == "ws-stock"),
                                         ["ws-stock", "ws-ours"])
        submissions = root / "submissions"
        plan = write_submissions(args.n, stock_ws / "release" / ASSIGNMENT, solutions, notebooks, submissions)
        for ws in (stock_ws, ours_ws):
            shutil.copytree(submissions, ws / "submitted", dirs_exist_ok=True)
        run([sys.executable, "-c", "import coursekit, tensorflow"])  # warm the page cache for both

        cores = os.cpu_count() or 1
        workers = args.workers or cores
        print(f"{args.n} submissions of {ASSIGNMENT} ({', '.join(notebooks)}); {cores} cores; "
              f"load average before: {os.getloadavg()[0]:.2f}")
        started = time.perf_counter()
        stock = run([BIN / "nbgrader", "autograde", ASSIGNMENT, "--create", "--force"], cwd=stock_ws, check=False)
        stock_seconds = time.perf_counter() - started
        (root / "stock-nbgrader.log").write_text(stock.stdout + stock.stderr)
        started = time.perf_counter()
        ours_argv = [BIN / "course-grader", "autograde", ASSIGNMENT, "--workspace", ours_ws]
        if args.workers:
            ours_argv += ["--workers", str(args.workers)]
        ours = run(ours_argv, check=False)
        ours_seconds = time.perf_counter() - started
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        if ours.returncode != 0:
            print(ours.stdout[-3000:], ours.stderr[-3000:])
            sys.exit("course-grader autograde failed")

        problems = {}
        with open(ours_ws / "reports" / f"{ASSIGNMENT}-autograde-problems.csv", newline="") as rows:
            for row in csv.DictReader(rows):
                problems.setdefault(row["student"], []).append(row["reason"])

        students = sorted(plan)
        stock_scores = gradebook_scores(stock_ws, students)
        ours_scores = gradebook_scores(ours_ws, students)
        both = [s for s in students if stock_graded(stock_ws, s, notebooks)]
        only_ours = [s for s in students if s not in both]
        differ, unexpected = [], []
        for student in students:
            label, expected = plan[student]
            got = {k: v for k, v in ours_scores.get(student, {}).items() if k in expected}
            if got != expected:
                unexpected.append((student, label, {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}))
            if student in both:
                mine = {k: ours_scores.get(student, {}).get(k) for k in expected}
                theirs = {k: stock_scores.get(student, {}).get(k) for k in expected}
                if mine != theirs:
                    differ.append((student, label, {k: (mine[k], theirs[k]) for k in expected if mine[k] != theirs[k]}))

        print()
        print(f"{'student':8s} {'submission':42s} {'ours':>8s} {'stock':>8s}  notes")
        for student in students:
            label, expected = plan[student]
            total = sum(expected.values())
            mine = sum(v or 0 for k, v in ours_scores.get(student, {}).items() if k in expected)
            theirs = (f"{sum(v or 0 for k, v in stock_scores.get(student, {}).items() if k in expected):g}"
                      if student in both else "failed")
            notes = "; ".join(problems.get(student, []))[:90]
            print(f"{student:8s} {label:42s} {mine:>5g}/{total:g} {theirs:>8s}  {notes}")

        ratio = stock_seconds / ours_seconds
        print()
        print(f"stock nbgrader autograde : {stock_seconds:7.1f} s  = {stock_seconds / args.n:5.2f} s per submission "
              f"(exit code {stock.returncode}; log: {root / 'stock-nbgrader.log' if args.keep else 'not kept'})")
        print(f"course-grader autograde  : {ours_seconds:7.1f} s  = {ours_seconds / args.n:5.2f} s per submission "
              f"({workers} workers)")
        print(f"throughput ratio (ours / stock): {ratio:.2f}x   (target >= {TARGET:g}x: "
              f"{'met' if ratio >= TARGET else 'MISSED'})")
        print(f"graded by both: {len(both)}; stock nbgrader failed on: "
              f"{', '.join(f'{s} ({plan[s][0]})' for s in only_ours) or 'none'} (compared: only those both graded)")
        print(f"scores identical in the two gradebooks: {'yes' if not differ else 'NO'}")
        for student, label, what in differ:
            print(f"  DIFFERENT {student} ({label}): (ours, stock) {what}")
        print(f"every score as expected (ours): {'yes' if not unexpected else 'NO'}")
        for student, label, what in unexpected:
            print(f"  UNEXPECTED {student} ({label}): (got, expected) {what}")

        report = {}
        if not args.no_profile:
            report = profile(ours_ws)
            print("\nwhere one submission's time goes in course-grader (one notebook, alone; minimum of 3 runs, seconds):")
            for name, seconds in report.items():
                print(f"  {name:76s} {seconds:6.2f}")
        RESULTS.mkdir(exist_ok=True)
        name = f"bench_grader-n{args.n}{'-whole' if args.whole else ''}.json"
        (RESULTS / name).write_text(json.dumps({
            "command": " ".join(["benchmarks/bench_grader.py", *sys.argv[1:]]), "date": date.today().isoformat(),
            "n": args.n, "notebooks": notebooks,
            "workers": workers, "cores": cores, "stock_seconds": round(stock_seconds, 1),
            "ours_seconds": round(ours_seconds, 1), "ratio": round(ratio, 2), "target": TARGET,
            "identical_scores": not differ, "every_score_as_expected": not unexpected,
            "profile_seconds": {k: round(v, 2) for k, v in report.items()}}, indent=1) + "\n")
        print(f"results: {RESULTS / name}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if differ or unexpected:
        sys.exit(1)
    if ratio < TARGET:
        sys.exit(2)


if __name__ == "__main__":
    main()
