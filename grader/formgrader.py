"""JupyterLab on the grading workspace with nbgrader's Formgrader, for the answers a human grades.

The course environment turns nbgrader's instructor panels off for students (JupyterLab's
``labconfig/page_config.json`` at the environment's prefix). Here they are turned back on, for this server
only, from ``WORKSPACE/formgrader/``, whose

* ``labconfig/page_config.json`` re-enables the Formgrader and Create Assignment panels and nbgrader's menu
  (``{"disabledExtensions": {"@jupyter/nbgrader:formgrader": false, …}}``);
* ``jupyter_server_config.json`` enables nbgrader's ``formgrader`` server extension.

That folder goes first on ``JUPYTER_CONFIG_PATH``, the one place Jupyter reads before everything else: inside a
virtual environment Jupyter prefers the environment's config to the user's (``JUPYTER_PREFER_ENV_PATH``), so
``JUPYTER_CONFIG_DIR`` alone would lose to the course's settings. ``JUPYTER_CONFIG_DIR`` points there too, so
that nothing of the instructor's own ``~/.jupyter`` changes what this server shows.

The exchange-based panels (Assignment List, Course List) stay off: a workspace fed from an LMS export has no
nbgrader exchange. The server's working directory is the workspace, so Formgrader reads the workspace's
``nbgrader_config.py`` and gradebook; grades a grader enters there (``Grade.manual_score``) are what
``export``, ``report`` and ``feedback`` read.

Formgrader's own "Autograde" button grades one submission down the same path as ``course-grader
autograde`` (the workspace's config loads the course's, which replaces nbgrader's Execute with
``grader.preprocessors.SandboxedExecute``).
"""

import os
import sys
from pathlib import Path

from coursekit.install import enable_instructor_panels, instructor_environment

CONFIG_FOLDER = "formgrader"


def write_config(workspace):
    """The Jupyter config folder of the workspace's Formgrader server: the instructor panels on, the
    exchange panels off (``coursekit.install``, which also turns them off for students)."""
    folder = workspace.root / CONFIG_FOLDER
    folder.mkdir(exist_ok=True)
    enable_instructor_panels(folder, exchange=False)
    return folder


def command(workspace, ip="127.0.0.1", port=8888, extra=()):
    """(argv, env) of the JupyterLab server."""
    folder = write_config(workspace)
    argv = [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser", f"--ServerApp.ip={ip}",
            f"--ServerApp.port={port}", f"--ServerApp.root_dir={workspace.root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")  # Jupyter refuses root unless told
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(folder), **instructor_environment(folder)}
    # nbgrader's apps (and Jupyter's kernels) come from this environment even when it is not activated.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return argv + list(extra), env
