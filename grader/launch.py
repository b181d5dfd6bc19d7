"""Start a worker's sandbox: join its cgroups, and when run as root, give up root first.

    python -m grader.launch SPEC.json

``SPEC`` (written by ``grader.sandbox``): ``cgroup_procs`` (files this process writes its pid
to, so that the sandbox and all it starts are inside the worker's cgroups), ``uid``/``gid`` (the
unprivileged host user to become), ``stage`` (a folder and the host paths to show there) and
``argv`` (the bubblewrap command to exec).

Why the stage: bubblewrap sets up the sandbox as the user it runs as. Run by root with a user
namespace, its sandbox user *is* host root (the uid map is "65534 0 1"); run as an unprivileged
user, it cannot open paths that only root can reach — the Python environment under
``/root/.pyenv``, say. So, as root, this launcher enters a mount namespace of its own, mounts a
private tmpfs on the stage folder and binds there each path the sandbox may show, drops to the
unprivileged user, and execs bubblewrap, which binds them from the stage into the sandbox.
Nothing outside this process's mount namespace changes. Only the standard library is imported,
and no thread exists, so these system calls are safe here (they are not in a ``preexec_fn``).
"""

import ctypes
import json
import os
import sys
from pathlib import Path

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(source, target, fstype=None, flags=0, data=None):
    encode = lambda value: None if value is None else str(value).encode()  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


def stage(folder, paths):
    """Show each of ``paths`` at ``folder``/<index> in this process's private mount namespace."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare the mount namespace")
    _mount(None, "/", flags=MS_REC | MS_PRIVATE)
    _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    for index, (path, writable) in enumerate(paths):
        target = Path(folder) / str(index)
        if Path(path).is_dir():
            target.mkdir()
        else:
            target.touch()
        _mount(path, target, flags=MS_BIND | MS_REC)
        if not writable:
            _mount(None, target, flags=MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    _mount(None, folder, flags=MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def main(spec_path):
    spec = json.loads(Path(spec_path).read_text())
    for procs in spec.get("cgroup_procs", []):
        with open(procs, "w") as file:
            file.write(str(os.getpid()))
    if spec.get("stage"):
        stage(spec["stage"]["folder"], spec["stage"]["paths"])
    if spec.get("uid") is not None and os.getuid() == 0:
        os.setgroups([])
        os.setresgid(spec["gid"], spec["gid"], spec["gid"])
        os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    argv = spec["argv"]
    os.execv(argv[0], argv)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Exception as error:  # the coordinator reads this from the worker's log
        print(f"grader.launch: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(71)
