"""Regenerate exercises/ (the student release) from solutions/ with nbgrader's own converter.

    .venv/bin/python tools/release_exercises.py            # rewrite exercises/<assignment>/
    .venv/bin/python tools/release_exercises.py --root DIR # release a copy of the course in DIR

Runs ``nbgrader generate_assignment --force --no-db`` for every assignment folder in solutions/,
so the release is exactly what nbgrader makes (solutions and hidden tests stripped, cells locked,
checksums recorded). ``--no-db`` keeps the repository free of a gradebook: the instructor's
gradebook is created by the grader in its own workspace. tests/test_exercises.py regenerates the
release in a temporary folder and fails if the committed exercises/ differs.
"""

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def assignments(root):
    return sorted(p.name for p in (Path(root) / "solutions").iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def release(root):
    root = Path(root).resolve()
    nbgrader = Path(sys.executable).with_name("nbgrader")
    for assignment in assignments(root):
        result = subprocess.run(
            [str(nbgrader), "generate_assignment", assignment, "--force", "--no-db",
             f"--CourseDirectory.root={root}"],
            cwd=root, capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            raise SystemExit(f"nbgrader could not release '{assignment}' (see above)")
        print(f"released {assignment} -> {(root / 'exercises' / assignment).relative_to(root)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=ROOT, help="course folder holding nbgrader_config.py and solutions/")
    release(parser.parse_args(argv).root)


if __name__ == "__main__":
    main()
