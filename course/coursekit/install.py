"""Install the course's Jupyter pieces into an environment: kernel, JupyterLab settings, nbgrader panels.

    python -m coursekit.install --prefix .venv      (what ./run does)
    python -m coursekit.install --sys-prefix        (what Binder's postBuild does)

1. The ``python3`` kernelspec, written by ipykernel, plus an ``env`` block that silences
   TensorFlow's C++ log lines: TensorFlow reads those variables once, when it is imported, and a
   student may import it before anything of ours runs. Its stderr lines would clutter lessons
   and make nbgrader score a passing test cell 0.
2. JupyterLab setting overrides (``share/jupyter/lab/settings/overrides.json``): no news or
   update notifications popping up over a lesson.
3. The student's JupyterLab: nbgrader's panels for instructors (Formgrader, Create Assignment)
   and for an exchange (Assignment List, Course List: a self-learner has no exchange, so they
   only show errors) are switched off at the environment's level, with Jupyter's own switches:
   ``etc/jupyter/labconfig/page_config.json`` (``disabledExtensions``, what
   ``jupyter labextension disable`` writes) and ``etc/jupyter/jupyter_server_config.json``
   (``jpserver_extensions``, what ``jupyter server extension disable`` writes). The Validate
   button stays. ``enable_instructor_panels(folder)`` writes the same two files with the panels on,
   and ``instructor_environment(folder)`` the variables that make a JupyterLab read that folder
   before the environment's: ``JUPYTER_CONFIG_PATH``, which jupyter_core always ranks first.
   (``JUPYTER_CONFIG_DIR`` alone is not enough: inside a virtual or conda environment jupyter_core
   ranks the environment's folder above it, unless ``JUPYTER_PREFER_ENV_PATH=0``.)
"""

import argparse
import json
import os
import sys
from pathlib import Path

from ipykernel.kernelspec import install as install_kernelspec
from jupyter_server.config_manager import BaseJSONConfigManager

from coursekit import QUIET_TENSORFLOW_ENV

LAB_SETTINGS_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}

# nbgrader's front-end plugins and server extensions a student does not use; "validate-assignment"
# (the Validate button) is not among them. The menu only opens the panels below.
INSTRUCTOR_LAB_PLUGINS = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:menu",
)
EXCHANGE_LAB_PLUGINS = (  # need nbgrader's exchange, which neither students nor an LMS-fed workspace have
    "@jupyter/nbgrader:assignment-list",
    "@jupyter/nbgrader:course-list",
)
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader",)
EXCHANGE_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
)


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


def set_instructor_panels(config_dir, enabled, exchange=None):
    """Switch nbgrader's instructor panels (and, by default with them, its exchange panels) on or off in one
    Jupyter configuration folder.

    ``config_dir`` is an ``etc/jupyter`` folder of an environment, or a folder that
    ``JUPYTER_CONFIG_PATH`` names. Other settings in the two files are kept.
    """
    exchange = enabled if exchange is None else exchange
    config_dir = Path(config_dir)
    plugins = {**{plugin: not enabled for plugin in INSTRUCTOR_LAB_PLUGINS},
               **{plugin: not exchange for plugin in EXCHANGE_LAB_PLUGINS}}
    extensions = {**{extension: enabled for extension in INSTRUCTOR_SERVER_EXTENSIONS},
                  **{extension: exchange for extension in EXCHANGE_SERVER_EXTENSIONS}}
    BaseJSONConfigManager(config_dir=str(config_dir / "labconfig")).update("page_config",
                                                                           {"disabledExtensions": plugins})
    BaseJSONConfigManager(config_dir=str(config_dir)).update("jupyter_server_config",
                                                             {"ServerApp": {"jpserver_extensions": extensions}})
    return [config_dir / "labconfig" / "page_config.json", config_dir / "jupyter_server_config.json"]


def install_student_panels(prefix):
    """The environment's JupyterLab without nbgrader's instructor and exchange panels."""
    return set_instructor_panels(Path(prefix) / "etc" / "jupyter", enabled=False)


def enable_instructor_panels(config_dir, exchange=True):
    """Bring the panels back for a JupyterLab started with ``instructor_environment(config_dir)``."""
    return set_instructor_panels(config_dir, enabled=True, exchange=exchange)


def instructor_environment(config_dir, environ=None):
    """Environment variables for a JupyterLab that shows the panels ``enable_instructor_panels`` enabled.

    ``JUPYTER_CONFIG_PATH`` comes before every other configuration folder, also before an
    environment's own, whatever ``JUPYTER_PREFER_ENV_PATH`` says; folders already on it stay after.
    """
    environ = os.environ if environ is None else environ
    existing = environ.get("JUPYTER_CONFIG_PATH")
    return {"JUPYTER_CONFIG_PATH": os.pathsep.join(filter(None, [str(config_dir), existing]))}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m coursekit.install", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--prefix", help="the environment to install into (e.g. .venv)")
    where.add_argument("--sys-prefix", action="store_true", help=f"install into {sys.prefix}")
    args = parser.parse_args(argv)
    prefix = sys.prefix if args.sys_prefix else args.prefix
    for installed in (install_kernel(prefix), install_lab_settings(prefix), *install_student_panels(prefix)):
        print(f"installed {installed}")


if __name__ == "__main__":
    main()
