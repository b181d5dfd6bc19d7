"""One worker's sandbox runs notebook after notebook, attacked from inside by the notebooks themselves.

These tests drive a real ``grader.forkserver.ForkServer`` (bubblewrap + the TensorFlow zygote +
the driver and judge) with small hostile notebooks, one after the other in the same worker, and
read what the notebooks could see and what the grader decided. Each attack names the defence it
meets; removing that defence makes its test fail (the mutation runs are listed in the notes of
the change that added them). Grading-level outcomes through the CLI are in
test_grader_robustness.py.
"""

import errno
import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from grader import execute, forkserver, sandbox
from grader.limits import Limits
from support.notebooks import ROOT

# One worker runs this module's tests: they share an expensive module fixture.
pytestmark = pytest.mark.xdist_group("forkserver")

LIMITS = Limits(wall_seconds=90, cell_seconds=20, memory_mib=2048, max_processes=128)
SETTINGS = {"cell_seconds": LIMITS.cell_seconds}
MARKER = "271.828"
KEY = f"KEY{secrets.randbelow(10**8):08d}"  # stands for a hidden test's key; nothing of the kernel's may hold it
# A notebook searches for KEY without writing it: the pattern below matches KEY but not itself.
FIND_KEY = r"re.compile(rb'KEY[0-9]{8}')"


def graded_cell(grade_id, source):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": grade_id, "points": 1,
                                 "locked": True, "schema_version": 3}
    return cell


def notebook(*cells):
    return nbformat.writes(nbformat.v4.new_notebook(
        cells=[c if isinstance(c, nbformat.NotebookNode) else nbformat.v4.new_code_cell(c) for c in cells],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}))


def printed(executed_json):
    executed = nbformat.reads(executed_json, as_version=4)
    return ["".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
            for c in executed.cells if c.cell_type == "code"]


def errors(executed_json):
    executed = nbformat.reads(executed_json, as_version=4)
    return [o.ename for c in executed.cells for o in c.outputs if o.output_type == "error"]


def judged(server, notebook_json, limits=LIMITS):
    """(executed notebook JSON, verdicts, cgroup usage)."""
    return server.run(notebook_json, {"cell_seconds": limits.cell_seconds}, limits)


def run(server, notebook_json, limits=LIMITS):
    return judged(server, notebook_json, limits)[0]


@pytest.fixture(scope="session")
def server():
    server = forkserver.ForkServer()
    yield server
    server.remove()


@pytest.mark.claim("readme.sandbox", "readme.world-per-notebook")
def test_the_kernel_sees_only_its_folder_and_the_allowed_system(server, tmp_path):
    """Allow-list sandbox (grader.sandbox) and job isolation (grader.zygote.isolate)."""
    planted = ROOT.parent / f"planted-{secrets.token_hex(4)}.txt"  # beside the repository, e.g. another course
    planted.write_text("another course's solutions")
    try:
        out = run(server, notebook(
            "import os, sys, json\nprint(json.dumps([os.getcwd(), sorted(os.listdir('.')), sorted(os.listdir('/')), "
            "sorted(os.listdir('/tmp')), sorted(os.listdir(os.path.expanduser('~')))]))",
            f"print(json.dumps([os.path.exists(p) for p in ['/etc/shadow', {str(planted)!r}, "
            f"{str(ROOT / 'solutions')!r}, {str(ROOT / 'tests')!r}, {str(ROOT / '.git')!r}, '/home', "
            "'/tmp/spool', '/tmp/cgroup', '/sys/fs/cgroup']]))",
            "try:\n    open(os.path.join(sys.prefix, 'planted'), 'w')\nexcept OSError as error:\n"
            "    print(error.errno, error.strerror)",
            "print(os.getuid(), os.getpid())",
            "print(open('/etc/passwd').read())"))
    finally:
        planted.unlink()
    listing, exists, write, ids, passwd = printed(out)
    cwd, here, root, tmp, home = json.loads(listing)
    assert [line.split(":")[0] for line in passwd.splitlines() if line] == ["sandbox"], "not the host's passwd"
    assert cwd == "/tmp/submission" and here == [".home"], "the kernel's folder holds nothing but its home"
    assert home == [] or set(home) <= {".ipython", ".matplotlib", "runtime", "data", "kernel.json", ".cache"}
    assert set(root) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr", "var",
                         *{Path(p).parts[1] for p in map(str, sandbox.python_paths())}}
    # A clone under /tmp (CI's, say) has its Python environment and course code mounted back there.
    mounted_back = {p.parts[2] for p in sandbox.python_paths() if p.is_relative_to("/tmp")}
    assert tmp == sorted({"submission"} | mounted_back)
    assert json.loads(exists) == [False] * 9, "nothing outside the allow-list may exist in the sandbox"
    assert write.split()[0] == str(errno.EROFS), f"the Python environment must be mounted read-only: {write}"
    uid, pid = ids.split()
    assert pid == "2", "the kernel is the second process of its own PID namespace"
    if os.geteuid() == 0:
        assert uid == "65534"


@pytest.mark.claim("readme.caps", "readme.sandbox")
def test_the_sandbox_is_an_unprivileged_host_user_even_for_root(server):
    """grader.launch drops root before bubblewrap: the kernel is uid 65534 on the host too."""
    executed = {}

    def grade():
        executed["out"] = run(server, notebook("import time\ntime.sleep(6)\nprint('done')"))

    import threading

    thread = threading.Thread(target=grade)
    thread.start()
    time.sleep(4)
    folders = server.cgroups.folders if server.cgroups else {}
    pids_folder = folders.get("pids") or folders.get("unified")
    jobs = [p for p in pids_folder.iterdir() if p.is_dir() and p.name.startswith("job-")]
    cpu_folder = folders.get("cpu") or folders.get("unified")
    quotas = []  # the notebook's CPU quota: one core (Limits.cpus), as cgroup v1's cfs files or v2's cpu.max
    for job in (p for p in cpu_folder.iterdir() if p.is_dir() and p.name.startswith("job-")):
        if (job / "cpu.max").exists():
            quota, period = (job / "cpu.max").read_text().split()
        else:
            quota, period = (job / "cpu.cfs_quota_us").read_text(), (job / "cpu.cfs_period_us").read_text()
        quotas.append(int(quota) / int(period))
    host_uids = set()
    for job in jobs:
        for pid in (job / "cgroup.procs").read_text().split():
            status = Path(f"/proc/{pid}/status").read_text()
            host_uids.add(int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]))
    thread.join()
    assert printed(executed["out"]) == ["done\n"]
    assert host_uids, "the notebook's processes were not found in its cgroup"
    assert quotas == [LIMITS.cpus] == [1.0], f"CPU quota in cores: {quotas}"
    expected = 65534 if os.geteuid() == 0 else os.getuid()
    assert host_uids == {expected}, f"the kernel runs as host uid {host_uids}"


@pytest.mark.claim("readme.judged-outside", "readme.world-per-notebook")
def test_no_test_source_or_key_ever_reaches_the_kernel(server):
    """The driver runs test cells itself (grader.judge); the kernel only answers typed requests, and
    was forked before anything of the job was read (grader.zygote)."""
    out, verdicts, _ = judged(server, notebook(
        # an IPython input transformer sees every piece of code the kernel runs from now on
        "import re\nseen = []\nget_ipython().input_transformers_post.append(lambda lines: seen.extend(lines) or lines)\n"
        "answer = 'A'",
        graded_cell("hidden", f"assert check.choice(check.answered('answer'), 'ABC', 'answer') == 'B', '{KEY}'"),
        # every file the kernel can read, its own memory, every frame and object it can reach
        f"import gc, os, sys\npattern = {FIND_KEY}\nfound = []\n"
        "for base, dirs, files in os.walk('/'):\n"
        "    skip = ('/proc', '/usr', '/dev', sys.prefix, sys.base_prefix)  # the system and the read-only Python\n"
        "    dirs[:] = [d for d in dirs if os.path.join(base, d) not in skip]\n"
        "    for name in files:\n"
        "        try:\n"
        "            with open(os.path.join(base, name), 'rb') as f:\n"
        "                if pattern.search(f.read(50_000_000)):\n"
        "                    found.append(os.path.join(base, name))\n"
        "        except OSError:\n"
        "            pass\n"
        "for line in open('/proc/self/maps'):\n"
        "    parts = line.split()\n"
        "    if 'r' in parts[1] and (len(parts) < 6 or parts[5].startswith('[')):\n"
        "        start, end = (int(x, 16) for x in parts[0].split('-'))\n"
        "        try:\n"
        "            with open('/proc/self/mem', 'rb') as mem:\n"
        "                mem.seek(start)\n"
        "                if pattern.search(mem.read(end - start)):\n"
        "                    found.append('memory ' + parts[0])\n"
        "        except (OSError, OverflowError, ValueError):\n"
        "            pass\n"
        "found += ['object' for o in gc.get_objects() if isinstance(o, (str, bytes)) and pattern.search(\n"
        "          o.encode() if isinstance(o, str) else o)][:1]\n"
        "found += ['transformer' for line in seen if pattern.search(line.encode())][:1]\n"
        "print(found)"))
    assert printed(out)[-1] == "[]\n", f"the key was found inside the kernel: {printed(out)[-1]}"
    assert [v["grade_id"] for v in verdicts] == ["hidden"] and verdicts[0]["passed"] is False
    assert verdicts[0]["answers"] == {"answer": "A"}


@pytest.mark.claim("readme.judged-outside")
def test_answers_are_read_where_the_test_stands(server):
    """Answers come from the kernel at the test's position (grader.driver): a later cell that
    changes the answer changes nothing."""
    _, verdicts, _ = judged(server, notebook(
        "answer = 'A'",
        graded_cell("first", "assert check.choice(check.answered('answer'), 'ABC', 'answer') == 'B'"),
        "answer = 'B'",
        graded_cell("second", "assert check.choice(check.answered('answer'), 'ABC', 'answer') == 'B'"),
        "answer = 'C'"))
    assert [(v["grade_id"], v["passed"]) for v in verdicts] == [("first", False), ("second", True)]


@pytest.mark.claim("readme.judged-outside")
def test_functions_get_copies_of_their_inputs(server):
    """An answer function that updates its arrays in place is judged on what it returns, not on
    inputs it changed (coursekit.answers copies arguments in and results out)."""
    _, verdicts, _ = judged(server, notebook(
        "import numpy as np\ndef step(w, g):\n    w -= 0.5 * g\n    g *= 0\n    return w",
        graded_cell("in_place", "import numpy as np\nw, g = np.ones(3), np.full(3, 2.0)\n"
                              "assert np.allclose(check.answered('step').call(w, g), 0.0)\n"
                              "assert np.allclose(w, 1.0) and np.allclose(g, 2.0)\n"
                              "assert np.allclose(check.answered('step').call(w, g), 0.0)")))
    assert verdicts[0]["passed"], verdicts[0]


@pytest.mark.claim("readme.caps")
def test_a_multi_process_memory_bomb_is_capped_for_the_whole_notebook(server):
    """Per-notebook memory cap (grader.cgroups): three children of 1.5 GiB each stay under 2 GiB together."""
    limits = Limits(wall_seconds=90, cell_seconds=40, memory_mib=2048, max_processes=128)
    out, _, usage = judged(server, notebook(
        "import os, time\nchildren = []\nfor _ in range(3):\n    pid = os.fork()\n    if pid == 0:\n"
        "        hog = bytearray(1536 * 2**20)\n        time.sleep(20)\n        os._exit(0)\n    children.append(pid)\n"
        "time.sleep(8)\nprint(sorted(os.waitstatus_to_exitcode(os.waitpid(p, os.WNOHANG)[1]) for p in children))",
        "print('still here')"), limits)
    assert usage["oom_kills"] >= 1, usage
    assert usage["peak_memory_bytes"] <= 2048 * 2**20
    notes = execute.usage_notes(usage, limits)
    assert [n.kind.value for n in notes] == ["memory"] and "2048 MiB" in notes[0].reason
    assert "-9" in printed(out)[0], "a child over the cap is killed"
    assert printed(run(server, notebook("print(6 * 7)"))) == ["42\n"], "the next notebook runs normally"


@pytest.mark.claim("readme.caps")
def test_a_fork_bomb_hits_the_process_cap(server):
    """Per-notebook process cap (grader.cgroups pids)."""
    limits = Limits(wall_seconds=90, cell_seconds=30, memory_mib=2048, max_processes=64)
    out, _, usage = judged(server, notebook(
        "import os, time\nstarted = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
        "            time.sleep(30)\n            os._exit(0)\n        started += 1\n"
        "except OSError as error:\n    print('refused after', started, type(error).__name__)"), limits)
    line = printed(out)[0].split()
    assert line[:2] == ["refused", "after"] and int(line[2]) < 64, line
    assert usage["process_cap_hits"] >= 1
    assert [n.kind.value for n in execute.usage_notes(usage, limits)] == ["processes"]
    assert printed(run(server, notebook("print(6 * 7)"))) == ["42\n"]


@pytest.mark.claim("readme.world-per-notebook")
def test_proc_shows_only_the_notebook_s_own_processes(server):
    """Each kernel mounts the /proc of its own PID namespace (grader.zygote._init)."""
    out = run(server, notebook(
        "import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
        "print(any(w in open(f'/proc/{p}/cmdline').read() for p in os.listdir('/proc') if p.isdigit()\n"
        "          for w in ('bwrap', '/tmp/spool')))",
        # unmounting the kernel's /proc would uncover the worker's
        "import ctypes\nprint(ctypes.CDLL(None, use_errno=True).umount2(b'/proc', 2))"))
    pids, umount = printed(out)
    assert pids.splitlines() == ["[1, 2]", "False"]
    assert umount == "-1\n"


@pytest.mark.claim("readme.world-per-notebook")
def test_nothing_a_notebook_leaves_behind_reaches_the_next(server):
    leave = notebook(
        # a daemon (double fork, new session) that would outlive the notebook...
        f"import os, subprocess\nsubprocess.Popen(['sleep', '{MARKER}'], start_new_session=True)",
        # ...and files in every writable place
        "for place in ['/tmp', '/dev/shm', '/var/tmp', os.path.expanduser('~')]:\n"
        "    open(os.path.join(place, 'left-behind'), 'w').write('x')")
    look = notebook(
        "import os\nprint([p for p in ['/tmp', '/dev/shm', '/var/tmp', os.path.expanduser('~')]\n"
        "       if os.path.exists(os.path.join(p, 'left-behind'))])")
    assert errors(run(server, leave)) == []
    assert printed(run(server, look)) == ["[]\n"]
    leftovers = subprocess.run(["pgrep", "-f", f"sleep {MARKER}"], capture_output=True, text=True).stdout
    assert leftovers == "", "a process started by a notebook outlived it"


@pytest.mark.claim("readme.caps")
def test_a_notebook_past_its_wall_time_is_stopped_and_the_worker_goes_on(server):
    limits = Limits(wall_seconds=8, cell_seconds=20)
    with pytest.raises(forkserver.JobFailed, match="longer than 8 s"):
        run(server, notebook("import time\ntime.sleep(30)"), limits)
    assert printed(run(server, notebook("print(6 * 7)"))) == ["42\n"]


def test_a_test_that_runs_too_long_says_so(server):
    """An answer function that never returns: the test is stopped at the cell limit and says why."""
    limits = Limits(wall_seconds=60, cell_seconds=4)
    out, verdicts, _ = judged(server, notebook(
        "def f():\n    while True:\n        pass",
        graded_cell("loops", "check.answered('f').call()"),
        "print('after')"), limits)
    assert verdicts[0]["passed"] is False and verdicts[0]["kind"] == "timeout"
    assert "ran longer than 4 s" in verdicts[0]["error"][1]
    assert printed(out)[-1] == "after\n", "the notebook goes on after the interrupted test"


def test_a_dead_zygote_is_replaced(server):
    server.close()  # as if the sandbox had been killed
    assert printed(run(server, notebook("print('again')"))) == ["again\n"]


@pytest.mark.claim("readme.user-namespaces")
def test_a_machine_that_cannot_isolate_notebooks_is_refused_with_the_reason(monkeypatch):
    """Where user namespaces cannot be nested (some containers), grading stops before the batch with
    the reason, instead of failing every notebook. bubblewrap's --disable-userns makes that machine."""
    monkeypatch.setattr(sandbox, "EXTRA_BWRAP_ARGS", ["--disable-userns"])
    with pytest.raises(sandbox.SandboxUnavailable, match="nested user namespaces"):
        sandbox.check_namespaces()
    monkeypatch.undo()
    sandbox.check_namespaces()  # and this machine can
