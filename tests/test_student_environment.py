"""The student's JupyterLab has no nbgrader instructor or exchange panels; an instructor's config brings them back.

Jupyter decides with its own machinery: JupyterLab's page config (``labconfig/page_config.json``,
``disabledExtensions``) and jupyter_server's ``jpserver_extensions``, both merged over Jupyter's
configuration path, where the folder named by ``JUPYTER_CONFIG_DIR`` comes first. Each check runs in a
fresh Python process with a chosen environment, because Jupyter reads its paths from the environment
variables. tests/browser/ checks the same in a running JupyterLab.
"""

import json
import os
import subprocess
import sys

import pytest

from coursekit import install
from support.notebooks import ROOT

# What jupyter lab itself computes, in a fresh process: the front-end plugins it disables and the
# server extensions it loads (jupyterlab_server.config.get_page_config, ServerApp.find_server_extensions).
RESOLVE = """
import json, os
from jupyter_core.paths import jupyter_config_path, jupyter_path
from jupyter_server.extension.config import ExtensionConfigManager
from jupyterlab_server.config import get_page_config

page = get_page_config([os.path.join(p, "labextensions") for p in jupyter_path()])
server = ExtensionConfigManager(read_config_path=jupyter_config_path()).get_jpserver_extensions()
print(json.dumps({"disabled": sorted(page["disabledExtensions"]), "server": server}))
"""
VALIDATE = "nbgrader.server_extensions.validate_assignment"


def resolve(tmp_path, **env):
    """Jupyter's resolved settings with an empty user folder and ``env`` on top."""
    user = tmp_path / "user-config"
    user.mkdir(exist_ok=True)
    environment = {**os.environ, "JUPYTER_CONFIG_DIR": str(user), "JUPYTER_CONFIG_PATH": "",
                   "JUPYTER_DATA_DIR": str(tmp_path / "data"), **env}
    result = subprocess.run([sys.executable, "-c", RESOLVE], env=environment, capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_student_view(settings):
    for plugin in (*install.INSTRUCTOR_LAB_PLUGINS, *install.EXCHANGE_LAB_PLUGINS):
        assert plugin in settings["disabled"], plugin
    for extension in (*install.INSTRUCTOR_SERVER_EXTENSIONS, *install.EXCHANGE_SERVER_EXTENSIONS):
        assert settings["server"][extension] is False, extension
    assert "@jupyter/nbgrader:validate-assignment" not in settings["disabled"]
    assert settings["server"][VALIDATE] is True


def assert_instructor_view(settings):
    assert not set(install.INSTRUCTOR_LAB_PLUGINS) & set(settings["disabled"])
    for extension in install.INSTRUCTOR_SERVER_EXTENSIONS:
        assert settings["server"][extension] is True, extension


def test_the_installer_switches_the_panels_off_in_an_environment(tmp_path):
    prefix = tmp_path / "env"
    written = install.install_student_panels(prefix)
    assert [path.relative_to(prefix).as_posix() for path in written] == [
        "etc/jupyter/labconfig/page_config.json", "etc/jupyter/jupyter_server_config.json"]
    # An environment whose own nbgrader switched everything on, as pip installs it (.d file):
    drop_in = prefix / "etc" / "jupyter" / "jupyter_server_config.d" / "nbgrader.json"
    drop_in.parent.mkdir(parents=True)
    drop_in.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {
        name: True for name in (*install.INSTRUCTOR_SERVER_EXTENSIONS, *install.EXCHANGE_SERVER_EXTENSIONS,
                                VALIDATE)}}}))
    # ...and a drop-in that enables the plugins, so that the environment's own switches have to win
    page_drop_in = prefix / "etc" / "jupyter" / "labconfig" / "page_config.d" / "on.json"
    page_drop_in.parent.mkdir(parents=True)
    page_drop_in.write_text(json.dumps({"disabledExtensions": {
        name: False for name in (*install.INSTRUCTOR_LAB_PLUGINS, *install.EXCHANGE_LAB_PLUGINS)}}))
    install.install_student_panels(prefix)  # again: nothing doubles, the drop-ins stay as they are
    assert_student_view(resolve(tmp_path, JUPYTER_CONFIG_PATH=str(prefix / "etc" / "jupyter")))


@pytest.mark.claim("readme.student-panels")
def test_the_course_environment_is_a_student_environment(tmp_path):
    """What ./run installs into .venv (and postBuild into Binder's environment): the panels are off."""
    assert_student_view(resolve(tmp_path))


@pytest.mark.claim("readme.student-panels")
def test_an_instructors_config_folder_brings_the_panels_back(tmp_path):
    workspace_config = tmp_path / "grading-workspace" / "jupyter-config"
    install.enable_instructor_panels(workspace_config)
    assert_instructor_view(resolve(tmp_path, **install.instructor_environment(workspace_config, environ={})))
    assert_student_view(resolve(tmp_path))  # the environment itself is unchanged


@pytest.mark.claim("readme.hand-grades")
def test_the_grading_workspace_shows_formgrader_but_no_exchange_panels(tmp_path):
    """course-grader formgrader: an LMS-fed workspace has no nbgrader exchange, so its panels stay off."""
    workspace_config = tmp_path / "formgrader"
    install.enable_instructor_panels(workspace_config, exchange=False)
    settings = resolve(tmp_path, **install.instructor_environment(workspace_config, environ={}))
    assert_instructor_view(settings)
    assert set(install.EXCHANGE_LAB_PLUGINS) <= set(settings["disabled"])
    assert not any(settings["server"][extension] for extension in install.EXCHANGE_SERVER_EXTENSIONS)


def test_jupyter_config_dir_alone_ranks_below_the_environment_but_not_with_prefer_env_path_off(tmp_path):
    """Why instructor_environment uses JUPYTER_CONFIG_PATH: in a virtual environment (ours), jupyter_core ranks
    the environment's folder above JUPYTER_CONFIG_DIR unless JUPYTER_PREFER_ENV_PATH=0."""
    workspace_config = tmp_path / "jupyter-config"
    install.enable_instructor_panels(workspace_config)
    assert sys.prefix != sys.base_prefix, "the course runs in a virtual environment (.venv)"
    assert_student_view(resolve(tmp_path, JUPYTER_CONFIG_DIR=str(workspace_config)))
    assert_instructor_view(resolve(tmp_path, JUPYTER_CONFIG_DIR=str(workspace_config), JUPYTER_PREFER_ENV_PATH="0"))


def test_instructor_environment_keeps_folders_already_on_the_config_path(tmp_path):
    env = install.instructor_environment(tmp_path / "a", environ={"JUPYTER_CONFIG_PATH": "/b"})
    assert env == {"JUPYTER_CONFIG_PATH": os.pathsep.join([str(tmp_path / "a"), "/b"])}


@pytest.mark.claim("readme.binder")
def test_run_and_binder_both_install_the_student_environment():
    assert "-m coursekit.install --prefix" in (ROOT / "run").read_text()
    assert "-m coursekit.install --sys-prefix" in (ROOT / "postBuild").read_text()


@pytest.mark.parametrize("argv", [["--prefix", "{prefix}"]])
def test_the_installer_command_line_writes_the_panel_switches(tmp_path, argv, capsys):
    prefix = tmp_path / "cli-env"
    install.main([arg.format(prefix=prefix) for arg in argv])
    page = json.loads((prefix / "etc" / "jupyter" / "labconfig" / "page_config.json").read_text())
    assert all(page["disabledExtensions"][plugin] is True for plugin in install.INSTRUCTOR_LAB_PLUGINS)
    assert "page_config.json" in capsys.readouterr().out
