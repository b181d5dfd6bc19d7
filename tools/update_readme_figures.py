"""Write README's measured figures from the committed output of the runs that measured them.

    .venv/bin/python tools/update_readme_figures.py            # rewrite the marked regions of README.md
    .venv/bin/python tools/update_readme_figures.py --check    # exit 1 if a region would change

Every region of README.md that holds figures sits between two marker comments,

    <!-- figures: NAME (written by tools/update_readme_figures.py from FILE; edit the tool, not this text) -->
    ...
    <!-- /figures: NAME -->

and is rewritten from its JSON file in benchmarks/results/ (written by the benchmark named there, or by
``COURSE_SUITE_RESULTS=benchmarks/results/test_suite.json ./run test`` for the suite's own figures). So a number
in README is always one a run wrote down; a region whose file is not committed says how to make it. Running the
script again changes nothing; tests/test_readme_figures.py fails when README differs from what it writes.
"""

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
START = "<!-- figures: {} (written by tools/update_readme_figures.py from {}; edit the tool, not this text) -->"
END = "<!-- /figures: {} -->"
REGION = re.compile(r"<!-- figures: (?P<name>[\w-]+) \(.*?-->\n(?P<body>.*?)<!-- /figures: (?P=name) -->", re.S)


WIDTH = 118
TARGET_SUBMISSIONS = 10_000  # bench_grader_dask.py's projection: this many TensorFlow notebooks in an hour


def tag(claim):
    return f"<!-- claim: {claim} -->"


def paragraph(text, claim):
    """A paragraph wrapped as README's are, with its claim tag on the line below it."""
    return textwrap.fill(text, WIDTH, break_long_words=False, break_on_hyphens=False) + "\n" + tag(claim)


def load(name):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def missing(command, file, claim):
    return paragraph(f"*No run is committed yet: `{command}` writes `benchmarks/results/{file}`, then "
                     f"`.venv/bin/python tools/update_readme_figures.py` puts its figures here.*", claim) + "\n"


def minutes_seconds(seconds):
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


# --------------------------------------------------------------------------- regions


def suite():
    results = load("test_suite.json")
    if results is None:
        return missing("COURSE_SUITE_RESULTS=benchmarks/results/test_suite.json ./run test", "test_suite.json",
                       "figures.suite")
    tests = results["tests"]
    skipped = f" ({tests['skipped']} skipped)" if tests.get("skipped") else ""
    lines = [paragraph(f"The last whole run of the suite that passed (`COURSE_SUITE_RESULTS=benchmarks/results/"
                       f"test_suite.json ./run test`, {results['date']}, {results['cpus']} cores, load average "
                       f"{results['load_average_before']} when it started): {tests['passed']} tests passed{skipped} in "
                       f"{minutes_seconds(results['seconds'])} (pytest's own time, set-up not included).",
                       "figures.suite"), "",
             "| notebook | wall time (nbclient) | kernel peak memory | in the browser (Run All) |", "|---|---|---|---|"]
    runs = results["notebooks"]
    for name in sorted(n for n in runs if n.startswith("course/")):
        lesson = int(re.match(r"course/(\d+)-", name).group(1))
        run, browser = runs[name], runs.get(f"browser: {name}")
        shown = f"{browser['wall_seconds']:.0f} s, {browser['kernel_peak_mib']} MiB" if browser else "not run"
        lines.append(f"| lesson {lesson} | {run['wall_seconds']:.0f} s | {run['kernel_peak_mib']} MiB | {shown} |")
    solutions = [run for name, run in runs.items() if name.startswith("solutions/")]
    if solutions:
        low, high = (min(r["wall_seconds"] for r in solutions), max(r["wall_seconds"] for r in solutions))
        lines.append(f"| solutions ({len(solutions)} notebooks) | {low:.0f}–{high:.0f} s each | "
                     f"≤ {max(r['kernel_peak_mib'] for r in solutions)} MiB | |")
    lines.append(tag("figures.suite"))
    return "\n".join(lines) + "\n"


def browser_widgets():
    results = load("browser_widgets.json")
    if results is None:
        return missing(".venv/bin/python benchmarks/bench_browser_widgets.py", "browser_widgets.json",
                       "figures.browser")
    targets, machine = results["targets"], results["machine"]
    loads = sorted((machine["load_average_before"][0], machine["load_average_after"][0]))
    lines = [paragraph(f"Figures of the last run ({results['date']}; {machine['cpus']} cores, load average "
                       f"{loads[0]}–{loads[1]} from other jobs; targets: median ≤ {targets['median_ms']:g} ms per widget "
                       f"and per control, ≥ {targets['drag_frames']} frames in the "
                       f"{targets['drag_widget'].split(' · ')[1]} drag — "
                       f"{'all met' if results['targets_met'] else 'missed: ' + ', '.join(results['missed'])}; all in "
                       f"`benchmarks/results/browser_widgets.json`):", "figures.browser"), "",
             "| widget | median (max) | slowest control's median | frames in a 2 s drag |", "|---|---|---|---|"]
    for name, widget in results["widgets"].items():
        controls = widget["controls"]
        slowest = ""
        if len(controls) > 1:
            control, figures = max(controls.items(), key=lambda item: item[1]["median_ms"])
            slowest = f"{control.removeprefix('slider ')} {figures['median_ms']:.0f} ms"
        drag = widget.get("drag")
        frames = "" if not drag else str(drag["frames"]) + (
            f" (target ≥ {targets['drag_frames']})" if name == targets["drag_widget"] else "")
        lines.append(f"| {name.replace(' · ', ' ')} | {widget['median_ms']:.0f} ms ({widget['max_ms']:.0f} ms) | "
                     f"{slowest} | {frames} |")
    lines.append(tag("figures.browser"))
    return "\n".join(lines) + "\n"


def kernel_widgets():
    lesson02, lessons03_04 = load("lesson02.json"), load("lessons03_04.json")
    if lesson02 is None or lessons03_04 is None:
        return missing(".venv/bin/python benchmarks/bench_lesson02.py; .venv/bin/python benchmarks/bench_lessons03_04.py",
                       "lesson02.json and lessons03_04.json", "figures.kernel")
    targets = lesson02["targets"]
    lines = ["| widget | command | median (target) |", "|---|---|---|",
             f"| lesson 2 trajectory explorer: slider → redrawn path | `.venv/bin/python benchmarks/bench_lesson02.py` | "
             f"{lesson02['trajectory_median_ms']:.0f} ms (≤ {targets['trajectory_ms']} ms) |",
             f"| lesson 2 live retraining: slider → seed model retrained (400 points, 50 epochs, batch 32) + plots "
             f"redrawn | same | {lesson02['retrain_median_ms']:.0f} ms (≤ {targets['retrain_ms']} ms) |",
             f"| `model.fit` on the same data, already traced | same | {lesson02['fit_median_ms']:.0f} ms → the fast "
             f"path is **{lesson02['speedup_over_fit']:.1f}×** faster (≥ {targets['speedup']:g}×) |"]
    budget = lessons03_04["budget_ms"]
    for index, (name, widget) in enumerate(lessons03_04["widgets"].items()):
        command = "`.venv/bin/python benchmarks/bench_lessons03_04.py`" if index == 0 else "same"
        label = name.split(" (")[0].replace(" · ", " ").replace("->", "→")
        lines.append(f"| {label} | {command} | {widget['median_ms']:.1f} ms (≤ {budget:g} ms) |")
    lines.append(tag("figures.kernel"))
    met = lesson02["targets_met"] and lessons03_04["targets_met"]
    lines += ["", paragraph(f"Every target was {'met' if met else 'NOT met'} in these runs "
                            f"(`benchmarks/results/lesson02.json`, `lessons03_04.json`).", "figures.kernel")]
    return "\n".join(lines) + "\n"


def lms():
    results = load("lms.json")
    if results is None:
        return missing(".venv/bin/python benchmarks/bench_lms.py --n 500", "lms.json", "figures.lms")
    return paragraph(f"Measured on this {results['cpus']}-core machine (`{results['command']}`, {results['date']}): "
                     f"collecting a generated Canvas zip of {results['n']} students takes "
                     f"{results['collect_seconds']:.2f} s, and comparing the answers of {results['similarity_n']} "
                     f"students (8 answers each) for similarity {results['similarity_seconds']:.1f} s; each command also "
                     f"pays {results['startup_seconds']:.1f} s to start (`course-grader --help`).", "figures.lms") + "\n"


def grader_dask():
    results = load("bench_grader_dask.json")
    if results is None:
        return missing(".venv/bin/python benchmarks/bench_grader_dask.py --n 12", "bench_grader_dask.json",
                       "figures.dask")
    n, configurations = results["n"], results["configurations"]
    when = ", ".join(str(results[key]) + (" cores" if key == "cpus" else "") for key in ("date", "cpus") if key in results)
    lines = [paragraph(f"**Measured here** (`.venv/bin/python {results['command']}`{', ' + when if when else ''}; "
                       f"{n} quiz submissions per configuration):", "figures.dask"), "",
             "| configuration | s per submission | submissions/min |", "|---|---|---|"]
    for name, figures in configurations.items():
        lines.append(f"| {name} | {figures['seconds_per_submission']:.2f} | {figures['submissions_per_minute']:.1f} |")
    lines.append(tag("figures.dask"))
    ratio = configurations["dask, 1 worker"]["batch_seconds"] / configurations["dask, 2 workers"]["batch_seconds"]
    lines += ["", paragraph(f"Dask adds {results['dask_overhead_per_submission_seconds']:+.3f} s per submission "
                            f"({results['dask_round_trip_ms']:.1f} ms is Dask's own round trip of a notebook-sized task) "
                            f"and {results['dask_fixed_cost_seconds']:.2f} s per batch to connect and check the workers; "
                            f"2 Dask workers give {ratio:.2f}× the throughput of 1. The gradebooks were "
                            f"{'identical' if results['identical_gradebooks'] else 'NOT identical'} across all four "
                            f"configurations.", "figures.dask")]
    tensorflow = results.get("tensorflow")
    if tensorflow:
        coordinator = tensorflow["coordinator_seconds_per_submission"]
        minutes = TARGET_SUBMISSIONS * coordinator / 60
        lines += ["", paragraph(
            f"**How big a cluster.** The same run grades TensorFlow notebooks (`compile-for-the-task`) on one worker: "
            f"the first took {tensorflow['first_notebook_seconds']:.2f} s (it waits for the worker's sandbox to import "
            f"TensorFlow), each warm one {tensorflow['warm_notebook_seconds_local']:.2f} s locally and "
            f"{tensorflow['warm_notebook_seconds_dask']:.2f} s through Dask, judging included. {TARGET_SUBMISSIONS:,} "
            f"such notebooks in an hour need {tensorflow['worker_threads_for_10000_an_hour']} worker threads fully "
            f"busy, {tensorflow['worker_threads_with_headroom']} with 25 % headroom. The grader's serial part (prepare "
            f"and score, one writer) took {coordinator:.2f} s per submission, {minutes:.0f} minutes for "
            f"{TARGET_SUBMISSIONS:,}: " + ("it fits in the hour." if minutes < 60 else "it does not fit in the hour, so "
                                           "it, not the workers, sets the pace — run it on a machine of its own."),
            "figures.dask")]
    return "\n".join(lines) + "\n"


def grader_throughput():
    runs = sorted((json.loads(p.read_text()) for p in RESULTS.glob("bench_grader-n*.json")),
                  key=lambda r: (len(r["notebooks"]) > 1, r["n"]))
    if not runs:
        return missing(".venv/bin/python benchmarks/bench_grader.py", "bench_grader-n24.json", "figures.grader")
    lines = ["| submissions | stock nbgrader | course-grader | ratio (target) |", "|---|---|---|---|"]
    for run in runs:
        what = (f"{run['n']} whole assignments (`--whole`: {len(run['notebooks'])} notebooks)"
                if len(run["notebooks"]) > 1 else f"{run['n']} `{run['notebooks'][0]}`")
        lines.append(f"| {what} | {run['stock_seconds']:.1f} s ({run['stock_seconds'] / run['n']:.2f} s each) | "
                     f"{run['ours_seconds']:.1f} s ({run['ours_seconds'] / run['n']:.2f} s each, {run['workers']} "
                     f"workers) | **{run['ratio']:.2f}×** (≥ {run['target']:g}×) |")
    lines.append(tag("figures.grader"))
    same = all(run["identical_scores"] and run["every_score_as_expected"] for run in runs)
    dates = ", ".join(sorted({run["date"] for run in runs if "date" in run}))
    lines += ["", paragraph(("Scores were identical in both gradebooks, and each the one the answer deserves, in every "
                             "run" if same else "Scores were NOT the same in every run") + (f" ({dates})." if dates else "."),
                            "figures.grader")]
    profiled = [run for run in runs if run.get("profile_seconds")]
    if profiled:
        profile = profiled[0]["profile_seconds"]

        def seconds(prefix):
            return next(value for key, value in profile.items() if key.strip().startswith(prefix))

        lines += ["", paragraph(f"Where the time goes for one `{profiled[0]['notebooks'][0]}` notebook in a warm worker (the "
                  f"benchmark's profile of the {profiled[0]['n']}-submission run): fork + isolation + kernel ready "
                  f"{seconds('one notebook, warm worker: fork'):.2f} s, its cells and tests "
                  f"{seconds('its cells run'):.2f} s, kernel killed + results back {seconds('kernel killed'):.2f} s; "
                  f"{seconds('= one notebook, warm worker, CPU'):.2f} s of CPU for all its processes. Each worker pays "
                  f"{seconds('worker sandbox start'):.1f} s once per batch to start (bubblewrap, importing "
                  f"TensorFlow), the coordinator {seconds('course-grader start-up'):.1f} s.", "figures.grader")]
    return "\n".join(lines) + "\n"


REGIONS = {
    "suite": ("benchmarks/results/test_suite.json", suite),
    "browser-widgets": ("benchmarks/results/browser_widgets.json", browser_widgets),
    "kernel-widgets": ("benchmarks/results/lesson02.json, lessons03_04.json", kernel_widgets),
    "lms": ("benchmarks/results/lms.json", lms),
    "grader-dask": ("benchmarks/results/bench_grader_dask.json", grader_dask),
    "grader-throughput": ("benchmarks/results/bench_grader-n*.json", grader_throughput),
}


def render(text):
    """README's text with every figures region rewritten; KeyError names a region the tool does not know."""
    def replace(match):
        name = match["name"]
        source, function = REGIONS[name]
        return f"{START.format(name, source)}\n{function()}{END.format(name)}"

    found = [match["name"] for match in REGION.finditer(text)]
    unknown = set(found) - set(REGIONS)
    if unknown:
        raise KeyError(f"README has figures regions the tool does not know: {sorted(unknown)}")
    return REGION.sub(replace, text)


def update(readme=README, write=True):
    """Rewrite README's regions; return True if the file changed (or would change)."""
    text = readme.read_text()
    new = render(text)
    if new != text and write:
        readme.write_text(new)
    return new != text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if README is out of date")
    args = parser.parse_args(argv)
    changed = update(write=not args.check)
    if args.check and changed:
        print("out of date: README.md (run .venv/bin/python tools/update_readme_figures.py)")
        return 1
    print("updated: README.md" if changed else "README.md's figures are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
