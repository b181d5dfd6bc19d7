"""Latency of the widgets of lessons 3 and 4: control change -> re-rendered PNG.

    .venv/bin/python benchmarks/bench_lessons03_04.py [--changes 30]

Each widget is built exactly as its lesson builds it (the models are trained once, as in the
lessons), then its control is moved ``--changes`` times the way a student drags it: the
observer hands the value to the widget's update thread, and the time is taken until the new
image is in the widget. Prints the median and the 90th percentile per widget, writes them to
benchmarks/results/lessons03_04.json, and exits with status 1 if a median is over the budget
(150 ms). benchmarks/bench_browser_widgets.py measures the same widgets in a browser.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import coursekit  # noqa: F401  (quiet TensorFlow before it loads)
import numpy as np

BUDGET_MS = 150.0
RESULTS = Path(__file__).resolve().parent / "results" / "lessons03_04.json"


def time_changes(widget, control, values):
    """Set ``control.value`` to each value in turn; return the latencies in ms (re-render checked)."""
    latencies = []
    for value in values:
        assert value != control.value, "each change must move the control"
        renders = widget.view.renders
        started = time.perf_counter()
        control.value = value
        widget.runner.wait()
        latencies.append((time.perf_counter() - started) * 1000)
        assert widget.view.renders == renders + 1, "the change did not re-render the image"
    return latencies


def probability_widget(changes):
    from coursekit.loss_metric_widgets import ProbabilityLossWidget

    widget = ProbabilityLossWidget(probability=0.5)
    # A drag across the slider and back, in its 0.01 steps.
    there, back = changes // 2, changes - changes // 2
    values = np.round(np.concatenate([np.linspace(0.02, 0.98, there), np.linspace(0.97, 0.03, back)]), 2)
    return time_changes(widget, widget.slider, values)


def output_loss_widget(changes):
    from coursekit.data import make_moons, train_test_split
    from coursekit.losses import train_output_loss_pairs
    from coursekit.loss_metric_widgets import OutputLossWidget

    X, y = make_moons(n_samples=400, noise=0.2, seed=0)
    X_train, y_train, _, _ = train_test_split(X, y, test_fraction=0.25, seed=0)
    runs = train_output_loss_pairs(X_train, y_train)
    widget = OutputLossWidget(runs, X_train, y_train)
    labels = list(runs)
    values = [labels[(i + 1) % len(labels)] for i in range(changes)]
    return time_changes(widget, widget.choice, values)


def threshold_widget(changes):
    from coursekit.data import train_test_split
    from coursekit.datasets_extra import as_batches, make_imbalanced
    from coursekit.loss_metric_widgets import ThresholdWidget
    from coursekit.models import build_seed_model
    from tensorflow.keras.optimizers import Adam

    X, y = make_imbalanced(n_samples=2000, positive_fraction=0.05, separation=1.5, seed=0)
    X_train, y_train, X_test, y_test = train_test_split(X, y, test_fraction=0.25, seed=0)
    coursekit.seed_everything(42)
    model = build_seed_model(compile_model=False)
    model.compile(optimizer=Adam(0.01), loss="binary_crossentropy")
    model.fit(as_batches(X_train, y_train), epochs=20, shuffle=False, verbose=0)
    widget = ThresholdWidget(y_test, np.asarray(model(X_test)).ravel())
    down, up = changes // 2, changes - changes // 2
    values = np.round(np.concatenate([np.linspace(0.49, 0.02, down), np.linspace(0.03, 0.9, up)]), 2)
    return time_changes(widget, widget.slider, values)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=30)
    args = parser.parse_args(argv)
    benchmarks = {
        "lesson 3 · probability -> loss (ProbabilityLossWidget)": probability_widget,
        "lesson 3 · output + loss runs (OutputLossWidget)": output_loss_widget,
        "lesson 4 · threshold -> confusion matrix (ThresholdWidget)": threshold_widget,
    }
    over_budget = []
    report = {"budget_ms": BUDGET_MS, "widgets": {}, "load_average_before": [round(v, 2) for v in os.getloadavg()]}
    for name, benchmark in benchmarks.items():
        latencies = benchmark(args.changes)
        median = statistics.median(latencies)
        p90 = float(np.percentile(latencies, 90))
        print(f"{name:62s} median {median:6.1f} ms · p90 {p90:6.1f} ms · max {max(latencies):6.1f} ms "
              f"({len(latencies)} changes)")
        report["widgets"][name] = {"median_ms": round(median, 1), "p90_ms": round(p90, 1),
                                   "max_ms": round(max(latencies), 1), "changes": len(latencies)}
        if median > BUDGET_MS:
            over_budget.append(name)
    report["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    report["targets_met"] = not over_budget
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    if over_budget:
        print(f"over the {BUDGET_MS:.0f} ms budget: {', '.join(over_budget)}")
        return 1
    print(f"all medians within the {BUDGET_MS:.0f} ms budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
