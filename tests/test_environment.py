"""One source of truth for versions, and set-up scripts that explain what is wrong."""

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from packaging.requirements import Requirement

from support.notebooks import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import sync_environment  # noqa: E402

import coursekit  # noqa: E402


@pytest.mark.claim("readme.binder", "readme.pins")
def test_environment_yml_is_generated_from_pyproject():
    assert (ROOT / "environment.yml").read_text() == sync_environment.render(), (
        "environment.yml is out of date: run .venv/bin/python tools/sync_environment.py"
    )


@pytest.mark.claim("readme.pins")
def test_every_pin_is_exact():
    for requirement in map(Requirement, sync_environment.pinned_requirements()):
        assert str(requirement.specifier).startswith("=="), f"{requirement} is not pinned exactly"


@pytest.mark.claim("course.versions", "readme.pins", "readme.real-keras")
def test_this_environment_has_the_pinned_versions():
    wrong = {}
    for requirement in map(Requirement, sync_environment.pinned_requirements()):
        installed = version(requirement.name)
        if installed not in requirement.specifier:
            wrong[requirement.name] = (installed, str(requirement.specifier))
    assert wrong == {}


@pytest.mark.claim("course.quiet-tensorflow", "readme.tensorflow-stderr")
def test_the_python3_kernel_silences_tensorflow():
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert Path(spec.argv[0]).resolve().parent == Path(sys.executable).resolve().parent, (
        "notebooks would run in another Python than the course's environment"
    )
    assert spec.env == coursekit.QUIET_TENSORFLOW_ENV


def test_lab_settings_turn_off_news():
    overrides = json.loads((Path(sys.prefix) / "share/jupyter/lab/settings/overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


@pytest.mark.parametrize("script", ["run", "postBuild", ".ci/run"])
def test_shell_scripts_parse(script):
    subprocess.run(["bash", "-n", str(ROOT / script)], check=True)


@pytest.mark.claim("readme.ci")
def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "./run test" in readme
    ci_commands = [line for line in (ROOT / ".ci/run").read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith("#") and not line.startswith("set ")]
    assert any(line.strip().startswith("./run test") for line in ci_commands)


@pytest.mark.claim("readme.run")
def test_run_without_python_311_says_what_is_missing(tmp_path):
    """On a machine whose only Python is 3.9, ./run explains instead of failing obscurely."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("run", "pyproject.toml"):
        shutil.copy(ROOT / name, repo / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "cat", "sha256sum", "cut", "id"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    fake_python = bin_dir / "python3"
    fake_python.write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'Python 3.9.2'\nexit 1\n")
    fake_python.chmod(0o755)
    result = subprocess.run([str(bin_dir / "bash"), str(repo / "run"), "test"], capture_output=True,
                            text=True, env={"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert result.returncode == 1
    assert "Python 3.11 was not found" in result.stderr
    assert "Python 3.9.2" in result.stderr
    assert not (repo / ".venv").exists()


@pytest.mark.claim("readme.run")
def test_run_without_a_command_prints_usage():
    result = subprocess.run([str(ROOT / "run")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "./run lab" in result.stdout and "./run test" in result.stdout
    result = subprocess.run([str(ROOT / "run"), "tset"], capture_output=True, text=True)
    assert result.returncode == 1 and "unknown command 'tset'" in result.stderr


@pytest.mark.claim("readme.run")
def test_run_lab_serves_lesson_one(tmp_path):
    """The README's set-up command ends with JupyterLab serving lesson 1 and the course kernel."""
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "course-test-token"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    server = subprocess.Popen(
        [str(ROOT / "run"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/contents/course/01-compiling-a-model.ipynb"
                                            f"?content=0&token={token}", timeout=5) as response:
                    assert json.load(response)["type"] == "notebook"
                break
            except OSError:
                assert server.poll() is None, "JupyterLab exited"
                assert time.monotonic() < deadline, "JupyterLab did not serve lesson 1 within 120 s"
                time.sleep(0.5)
        with urllib.request.urlopen(f"{base}/lab/tree/course/01-compiling-a-model.ipynb?token={token}") as page:
            assert page.status == 200 and b"JupyterLab" in page.read()
        with urllib.request.urlopen(f"{base}/api/kernelspecs?token={token}") as response:
            specs = json.load(response)
        assert specs["kernelspecs"]["python3"]["spec"]["env"] == coursekit.QUIET_TENSORFLOW_ENV
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.claim("readme.run")
def test_run_reinstalls_only_when_the_pins_change():
    """./run stamps .venv/ with a digest of pyproject.toml, run and the installer, and installs again only when the
    digest differs: this environment's stamp is the digest of the files as they are."""
    import hashlib

    stamp = ROOT / ".venv" / ".installed"
    digest = hashlib.sha256(b"".join((ROOT / name).read_bytes() for name in
                                     ("pyproject.toml", "run", "course/coursekit/install.py"))).hexdigest()
    assert stamp.read_text().strip() == digest, "the environment is older than pyproject.toml: run ./run test"
    assert 'if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]' in (ROOT / "run").read_text()


@pytest.mark.claim("readme.bubblewrap")
def test_run_installs_the_system_packages_the_grader_and_the_tests_need():
    """./run test installs Debian's bubblewrap (the grader's sandbox) and postgresql (the tests' server) when
    missing; here they are installed."""
    script = (ROOT / "run").read_text()
    function = script[script.index("ensure_system_packages() {"):script.index("\n}\n", script.index("ensure_system_packages() {"))]
    assert "missing+=(bubblewrap)" in function and "missing+=(postgresql)" in function and "apt-get install" in function
    test_command = script[script.index("    test)"):]
    assert test_command.index("ensure_system_packages") < test_command.index("pytest")
    assert shutil.which("bwrap")
