"""The instructor's LMS steps on a generated class: collect a Canvas zip, then the similarity measure at scale.

    .venv/bin/python benchmarks/bench_lms.py [--n 60] [--similarity-n 500]

1. A workspace (init, release quiz, the class from a generated Canvas gradebook export) and a Canvas
   "Download Submissions" zip of N quiz notebooks; ``collect`` timed through the grader's own API.
2. ``similarity.similar_pairs`` over M students with 8 answers of ~300 characters each (random words: no pair
   is similar), the part of ``report`` that grows with the square of the class.

3. ``course-grader --help``: what every command pays to start (Python, typer, nbgrader's imports).

Prints seconds per step and writes them to benchmarks/results/lms.json (README's figures come from that file,
tools/update_readme_figures.py); exit status 1 if the collection missed a file.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.lms_exports import CanvasExport, canvas_gradebook_csv, make_class  # noqa: E402

from grader.collect import collect  # noqa: E402
from grader.similarity import similar_pairs  # noqa: E402
from grader.workspace import Workspace  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "lms.json"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--similarity-n", type=int, default=500)
    args = parser.parse_args()
    cli = str(Path(sys.executable).with_name("course-grader"))
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        people = make_class(args.n, seed=1)
        (scratch / "gradebook.csv").write_text(canvas_gradebook_csv(people))
        for command in (["init", scratch / "ws"], ["release", "quiz", "-w", scratch / "ws"],
                        ["roster", scratch / "gradebook.csv", "-w", scratch / "ws"]):
            subprocess.run([cli, *map(str, command)], check=True, capture_output=True)
        workspace = Workspace(scratch / "ws")
        release = nbformat.writes(nbformat.read(workspace.root / "release/quiz/quiz.ipynb", as_version=4)).encode()
        export = CanvasExport()
        for person in people:
            export.add(person, "quiz.ipynb", release)
        archive = export.write_zip(scratch / "submissions.zip")
        started = time.perf_counter()
        result = collect(workspace, archive, "quiz")
        seconds = time.perf_counter() - started
        print(f"collect: {len(result.collected)} notebooks of {args.n} students from the zip in {seconds:.2f} s "
              f"({1000 * seconds / args.n:.1f} ms each)")
        missed = args.n - len(result.collected)

    rng = random.Random(0)
    words = ("sigmoid output probability range zero one class loss metric gradient optimizer weights reported "
             "minimised training accuracy cross entropy logits neuron dense layer binary").split()
    answers = {f"s{i}": {f"k{k}": " ".join(rng.choices(words, k=45)) for k in range(8)}
               for i in range(args.similarity_n)}
    started = time.perf_counter()
    pairs = similar_pairs(answers)
    similarity_seconds = time.perf_counter() - started
    print(f"similarity: {args.similarity_n} students x 8 answers in {similarity_seconds:.2f} s "
          f"({len(pairs)} similar pairs)")

    startups = []
    for _ in range(3):  # the minimum of three: the machine may be shared
        started = time.perf_counter()
        subprocess.run([cli, "--help"], check=True, capture_output=True)
        startups.append(time.perf_counter() - started)
    print(f"course-grader --help: {min(startups):.2f} s")

    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "command": " ".join([".venv/bin/python benchmarks/bench_lms.py", *sys.argv[1:]]), "date": date.today().isoformat(),
        "cpus": os.cpu_count(), "n": args.n, "collected": len(result.collected), "collect_seconds": round(seconds, 3),
        "similarity_n": args.similarity_n, "similarity_seconds": round(similarity_seconds, 2),
        "startup_seconds": round(min(startups), 2)}, indent=1) + "\n")
    print(f"results: {RESULTS}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
