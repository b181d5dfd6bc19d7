"""One worker's sandbox runs notebook after notebook: nothing one leaves behind may reach the next.

These tests drive a real ``grader.forkserver.ForkServer`` (bubblewrap + the TensorFlow zygote)
with small hostile notebooks, one after the other in the same worker, and read what the next
notebook could see. The grading-level outcomes are in test_grader_robustness.py.
"""

import json
import os

import nbformat
import pytest

from grader import forkserver, sandbox

LIMITS = sandbox.Limits(wall_seconds=60, cell_seconds=20, memory_mib=4096)
SETTINGS = {"cell_seconds": LIMITS.cell_seconds}
MARKER = "271.828"


def notebook(*cells):
    return nbformat.writes(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in cells],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}))


def printed(executed_json):
    executed = nbformat.reads(executed_json, as_version=4)
    return ["".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
            for c in executed.cells if c.cell_type == "code"]


def errors(executed_json):
    executed = nbformat.reads(executed_json, as_version=4)
    return [o.ename for c in executed.cells for o in c.outputs if o.output_type == "error"]


def run(server, notebook_json, settings, limits):
    executed, _ = server.run(notebook_json, settings, limits)
    return executed


@pytest.fixture(scope="module")
def server():
    server = forkserver.ForkServer(LIMITS)
    yield server
    server.remove()


def test_a_notebook_runs_and_sees_only_its_own_folder(server):
    out = run(server, notebook(
        "import os; print(os.getcwd(), sorted(os.listdir('.')))",
        # (the Python environment and the course's code stay visible when they live under /tmp)
        "import sys, coursekit\nkept = {p.split('/')[2] for p in [sys.prefix, coursekit.__file__] if p.startswith('/tmp/')}\n"
        "print(os.path.exists('/tmp/spool'), sorted(set(os.listdir('/tmp')) - kept))",
        "print(os.getuid(), os.getpid())"), SETTINGS, LIMITS)
    cwd, tmp, ids = printed(out)
    assert cwd.startswith("/tmp/submission ") and "'input.ipynb'" in cwd
    assert tmp.strip() == "False ['submission']", "the spool and other jobs' folders must be covered"
    assert ids.split()[1] == "2", "the kernel is the second process of its own PID namespace"


def test_nothing_a_notebook_leaves_behind_reaches_the_next(server):
    leave = notebook(
        # a daemon (double fork, new session) that would outlive the notebook...
        f"import os, subprocess\nsubprocess.Popen(['sleep', '{MARKER}'], start_new_session=True)",
        # ...files in every writable place...
        "for place in ['/tmp', '/dev/shm', '/var/tmp', os.path.expanduser('~')]:\n"
        "    open(os.path.join(place, 'left-behind'), 'w').write('x')",
        # ...and the channel to the coordinator, if any descriptor still led to it.
        # (pipes only: the kernel's own ZeroMQ sockets would break this kernel, not the grader)
        "import json\nfor fd in map(int, os.listdir('/proc/self/fd')):\n"
        "    try:\n"
        "        if os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:'):\n"
        "            os.write(fd, json.dumps({'job': 'job-999', 'timed_out': False}).encode() + b'\\n')\n"
        "    except OSError:\n        pass")
    look = notebook(
        "import os\nalive = []\nfor pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n        alive.append(open(f'/proc/{pid}/cmdline').read().replace('\\0', ' '))\n"
        "    except OSError:\n        pass\n"
        f"print(any('sleep {MARKER}' in a for a in alive))",
        "print([p for p in ['/tmp', '/dev/shm', '/var/tmp', os.path.expanduser('~')]\n"
        "       if os.path.exists(os.path.join(p, 'left-behind'))])")
    first = run(server, leave, SETTINGS, LIMITS)
    assert errors(first) == []
    second = run(server, look, SETTINGS, LIMITS)  # a reply for job-999 would have been taken as this one's
    assert printed(second) == ["False\n", "[]\n"]


def test_the_zygote_and_the_spool_are_out_of_reach(server):
    out = run(server, notebook(
        "import json, os\nmine = os.readlink('/proc/self')\nreached = []\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    for what in ('root/tmp', 'cwd', 'mem', 'environ'):\n"
        "        try:\n"
        "            if what in ('mem', 'environ'):\n"
        "                open(f'/proc/{pid}/{what}', 'rb').read(1)\n"
        "            else:\n"
        "                os.listdir(f'/proc/{pid}/{what}')\n"
        "            reached.append([pid, what])\n"
        "        except OSError:\n"
        "            pass\n"
        "print(json.dumps([[pid, what] for pid, what in reached if pid != mine]))",
        # Unmounting the private /tmp would uncover the spool.
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.umount2(b'/tmp', 2), libc.umount2(b'/tmp/submission', 2), os.path.exists('/tmp/spool'))"),
        SETTINGS, LIMITS)
    reached, unmount = printed(out)
    assert json.loads(reached) == [], "another process's files, memory or view of the spool were reachable"
    assert unmount.split() == ["-1", "-1", "False"]


def test_links_and_pipes_left_for_the_coordinator_are_not_followed(server, tmp_path):
    out = run(server, notebook(
        "import os\nos.mkfifo('output.ipynb')\nos.symlink('/etc/passwd', '.output-1.ipynb')", "print('done')"),
        SETTINGS, LIMITS)
    assert printed(out) == ["", "done\n"], "the result replaces what the notebook left at its name"
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to("/etc/passwd")
    assert forkserver.read_regular_file(tmp_path / "pipe", 100) is None  # returns at once, never blocks
    assert forkserver.read_regular_file(tmp_path / "link", 10**6) is None


def test_a_notebook_past_its_wall_time_is_stopped_and_the_worker_goes_on(server):
    limits = sandbox.Limits(wall_seconds=5, cell_seconds=20, memory_mib=LIMITS.memory_mib)
    with pytest.raises(forkserver.JobFailed, match="longer than 5 s"):
        run(server, notebook("import time\ntime.sleep(15)"), SETTINGS, limits)
    assert printed(run(server, notebook("print(6 * 7)"), SETTINGS, LIMITS)) == ["42\n"]


def test_a_dead_zygote_is_replaced(server):
    server.close()  # as if the sandbox had been killed
    assert printed(run(server, notebook("print('again')"), SETTINGS, LIMITS)) == ["again\n"]


def test_a_machine_that_cannot_isolate_notebooks_is_refused_with_the_reason(monkeypatch):
    """Where user namespaces cannot be nested (some containers), grading stops before the batch with
    the reason, instead of failing every notebook. bubblewrap's --disable-userns makes that machine."""
    command = sandbox.command
    monkeypatch.setattr(sandbox, "command", lambda *args, **kwargs: [
        part for item in command(*args, **kwargs)
        for part in ([item, "--disable-userns"] if item == "--unshare-user" else [item])])
    with pytest.raises(sandbox.SandboxUnavailable, match="nested user namespaces"):
        sandbox.check_namespaces()
    monkeypatch.undo()
    sandbox.check_namespaces()  # and this machine can
