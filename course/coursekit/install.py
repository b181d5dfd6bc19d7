"""Install the course's Jupyter pieces into an environment: kernel and JupyterLab settings.

    python -m coursekit.install --prefix .venv      (what ./run does)
    python -m coursekit.install --sys-prefix        (what Binder's postBuild does)

1. The ``python3`` kernelspec, written by ipykernel, plus an ``env`` block that silences
   TensorFlow's C++ log lines: TensorFlow reads those variables once, when it is imported, and a
   student may import it before anything of ours runs. Its stderr lines would clutter lessons
   and make nbgrader score a passing test cell 0.
2. JupyterLab setting overrides (``share/jupyter/lab/settings/overrides.json``): no news or
   update notifications popping up over a lesson.
"""

import argparse
import json
import sys
from pathlib import Path

from ipykernel.kernelspec import install as install_kernelspec

from coursekit import QUIET_TENSORFLOW_ENV

LAB_SETTINGS_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}


def install_kernel(prefix):
    kernel_dir = Path(install_kernelspec(kernel_name="python3", display_name="Python 3 (ipykernel)",
                                         prefix=prefix))
    spec_file = kernel_dir / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec.setdefault("env", {}).update(QUIET_TENSORFLOW_ENV)
    spec_file.write_text(json.dumps(spec, indent=1) + "\n")
    return spec_file


def install_lab_settings(prefix):
    settings_file = Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    current.update(LAB_SETTINGS_OVERRIDES)
    settings_file.write_text(json.dumps(current, indent=2) + "\n")
    return settings_file


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m coursekit.install", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--prefix", help="the environment to install into (e.g. .venv)")
    where.add_argument("--sys-prefix", action="store_true", help=f"install into {sys.prefix}")
    args = parser.parse_args(argv)
    prefix = sys.prefix if args.sys_prefix else args.prefix
    for installed in (install_kernel(prefix), install_lab_settings(prefix)):
        print(f"installed {installed}")


if __name__ == "__main__":
    main()
