"""Per-notebook caps that the Linux kernel enforces: memory, processes and CPU (control groups).

A process limit (RLIMIT_AS) caps one process; a notebook that starts three children can use
three times as much, and nothing caps how many processes it starts. A control group caps
every process of one notebook together, however many it starts. This machine kind offers
cgroup v1 (``memory``, ``pids``, ``cpu`` controllers, writable as root); laptops usually offer
cgroup v2, where systemd delegates a subtree to the user.

On the host (``detect``, ``WorkerCgroups``): the coordinator makes one cgroup per worker
sandbox below its own, hands it to the sandbox's user, and the sandbox starts inside it
(``grader.launch``). Inside the sandbox (``JobCgroup``): the zygote makes one child cgroup per
notebook with the notebook's caps, moves the notebook's kernel side into it, reads what was
hit afterwards and kills whatever is left. The student's code never sees a cgroup file: the
worker's cgroups are mounted under the worker's ``/tmp``, which every job covers.

Why by hand: no maintained Python library manages cgroup v1 and v2 delegation (cgroupspy and
libcgroup's bindings are unmaintained or v1-only); this is a few file writes each.
"""

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(os.environ.get("COURSE_GRADER_CGROUP_ROOT", "/sys/fs/cgroup"))  # test seam: a machine without cgroups
V1_CONTROLLERS = ("memory", "pids", "cpu")  # cpu is optional: a notebook then has no CPU quota
REQUIRED = ("memory", "pids")
CFS_PERIOD_US = 100_000


class CgroupsUnavailable(RuntimeError):
    pass


@dataclass
class Support:
    """What this machine offers: ``kind`` is "v1", "v2" or None; ``parents`` maps each controller
    (v1) or "unified" (v2) to the cgroup folder new cgroups go below."""
    kind: str = None
    parents: dict = field(default_factory=dict)
    reason: str = ""

    def describe(self):
        if self.kind is None:
            return f"no per-notebook caps ({self.reason})"
        return f"cgroup {self.kind} ({', '.join(sorted(self.parents))})"


def _own_cgroups():
    """{controller or "": path} of this process, from /proc/self/cgroup."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            own[controller] = path
    return own


def _writable(folder):
    return folder.is_dir() and os.access(folder, os.W_OK) and os.access(folder / "cgroup.procs", os.W_OK)


def detect():
    """Which cgroups this process can create per-notebook caps in, or why none."""
    try:
        own = _own_cgroups()
    except OSError as error:
        return Support(reason=f"cannot read /proc/self/cgroup ({error})")
    v1 = {c: ROOT / c / own[c].lstrip("/") for c in V1_CONTROLLERS if c in own and (ROOT / c).is_dir()}
    if all(c in v1 for c in REQUIRED):
        usable = {c: path for c, path in v1.items() if _writable(path)}
        if all(c in usable for c in REQUIRED):
            return Support("v1", usable)
        return Support(reason="cgroup v1 is mounted but its memory and pids cgroups are not writable here "
                              "(run the grader as root, or use a machine with cgroup v2 delegation)")
    if (ROOT / "cgroup.controllers").is_file() and "" in own:
        parent = ROOT / own[""].lstrip("/")
        controllers = set((parent / "cgroup.controllers").read_text().split()) if parent.is_dir() else set()
        if not set(REQUIRED) <= controllers:
            return Support(reason=f"cgroup v2 is mounted but {parent} does not offer the memory and pids controllers")
        if not _writable(parent):
            return Support(reason=f"cgroup v2: {parent} is not delegated to this user; start the grader with "
                                  "`systemd-run --user --scope -p Delegate=yes course-grader ...`")
        return Support("v2", {"unified": parent})
    return Support(reason="no cgroup v1 memory/pids controllers and no cgroup v2 here")


class WorkerCgroups:
    """The cgroup(s) of one worker sandbox, on the host. ``procs_files``: where the launcher writes
    its own pid; ``mounts``: {name: host folder} to mount at ``grader.limits.CGROUPS / name``."""

    def __init__(self, support, name, uid=None, gid=None):
        self.support, self.folders = support, {}
        if support.kind == "v1":
            for controller, parent in support.parents.items():
                folder = parent / name
                folder.mkdir(exist_ok=True)
                self.folders[controller] = folder
        elif support.kind == "v2":
            folder = support.parents["unified"] / name
            folder.mkdir(exist_ok=True)
            (folder / "zygote").mkdir(exist_ok=True)  # v2: processes only in leaves
            _write(folder / "cgroup.subtree_control", " ".join(f"+{c}" for c in V1_CONTROLLERS
                                                                if c in _available_v2(folder)))
            self.folders["unified"] = folder
        if uid is not None:
            for folder in self.folders.values():
                for path in [folder, *[folder / n for n in ("cgroup.procs", "tasks", "cgroup.subtree_control")],
                             *([folder / "zygote", folder / "zygote" / "cgroup.procs"]
                               if support.kind == "v2" else [])]:
                    if path.exists():
                        os.chown(path, uid, gid)

    @property
    def procs_files(self):
        if self.support.kind == "v2":
            return [self.folders["unified"] / "zygote" / "cgroup.procs"]
        return [folder / "cgroup.procs" for folder in self.folders.values()]

    @property
    def mounts(self):
        return dict(self.folders)

    def memory_bytes(self):
        """Memory now charged to the sandbox and everything it runs (for Dask's accounting)."""
        if self.support.kind == "v1":
            return _read_int(self.folders["memory"] / "memory.usage_in_bytes")
        if self.support.kind == "v2":
            return _read_int(self.folders["unified"] / "memory.current")
        return 0

    def remove(self):
        for folder in self.folders.values():
            _remove_tree(folder)


def _available_v2(folder):
    try:
        return set((folder / "cgroup.controllers").read_text().split())
    except OSError:
        return set()


# --------------------------------------------------------------------------- inside a worker's sandbox

@dataclass
class Usage:
    """What one notebook reached of its caps."""
    peak_memory_bytes: int = 0
    memory_cap_hits: int = 0      # allocations refused at the cap
    oom_kills: int = 0            # processes the kernel killed at the cap
    process_cap_hits: int = 0     # process/thread creations refused at the cap
    peak_processes: int = 0

    def as_dict(self):
        return self.__dict__.copy()


class JobCgroup:
    """One notebook's cgroup, made by the zygote below the worker's (mounted at ``base``)."""

    def __init__(self, base, name, limits):
        self.base, self.name = Path(base), name
        kinds = sorted(p.name for p in self.base.iterdir()) if self.base.is_dir() else []
        self.v2 = kinds == ["unified"]
        self.folders = {kind: self.base / kind / name for kind in kinds}
        for kind, folder in self.folders.items():
            folder.mkdir()
            self._limit(kind, folder, limits)

    def _limit(self, kind, folder, limits):
        memory = int(limits.memory_mib) * 2**20
        if kind == "memory":
            _write(folder / "memory.limit_in_bytes", memory)
            if (folder / "memory.memsw.limit_in_bytes").exists():  # swap counted too, where swap is accounted
                _write(folder / "memory.memsw.limit_in_bytes", memory, missing_ok=True)
        elif kind == "pids":
            _write(folder / "pids.max", int(limits.max_processes))
        elif kind == "cpu":
            _write(folder / "cpu.cfs_period_us", CFS_PERIOD_US, missing_ok=True)
            _write(folder / "cpu.cfs_quota_us", int(limits.cpus * CFS_PERIOD_US), missing_ok=True)
        elif kind == "unified":
            _write(folder / "memory.max", memory)
            _write(folder / "memory.swap.max", 0, missing_ok=True)
            _write(folder / "pids.max", int(limits.max_processes))
            _write(folder / "cpu.max", f"{int(limits.cpus * CFS_PERIOD_US)} {CFS_PERIOD_US}", missing_ok=True)

    def join(self):
        """Move the calling process into this cgroup (its children follow)."""
        for folder in self.folders.values():
            _write(folder / "cgroup.procs", os.getpid())

    def usage(self):
        usage = Usage()
        if "memory" in self.folders:
            folder = self.folders["memory"]
            usage.peak_memory_bytes = _read_int(folder / "memory.max_usage_in_bytes")
            usage.memory_cap_hits = _read_int(folder / "memory.failcnt")
            usage.oom_kills = _keyed(folder / "memory.oom_control").get("oom_kill", 0)
        if "pids" in self.folders:
            usage.process_cap_hits = _keyed(self.folders["pids"] / "pids.events").get("max", 0)
            usage.peak_processes = _read_int(self.folders["pids"] / "pids.peak")
        if "unified" in self.folders:
            folder = self.folders["unified"]
            usage.peak_memory_bytes = _read_int(folder / "memory.peak")
            events = _keyed(folder / "memory.events")
            usage.memory_cap_hits, usage.oom_kills = events.get("max", 0), events.get("oom_kill", 0)
            usage.process_cap_hits = _keyed(folder / "pids.events").get("max", 0)
            usage.peak_processes = _read_int(folder / "pids.peak")
        return usage

    def kill_all(self, seconds=10.0):
        """SIGKILL every process left in this cgroup, until none is (a fork bomb races us)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pids = set()
            for folder in self.folders.values():
                # A task that is exiting can be listed as pid 0 (no pid in our namespace any more): kill(0)
                # would signal our own process group, the zygote's.
                pids |= {int(p) for p in _read(folder / "cgroup.procs").split() if int(p) > 0}
            if not pids:
                return True
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)
        return False

    def remove(self):
        for folder in self.folders.values():
            _remove_tree(folder)


def _write(path, value, missing_ok=False):
    try:
        with open(path, "w") as file:
            file.write(str(value))
    except FileNotFoundError:
        if not missing_ok:
            raise
    except OSError:
        if not missing_ok:
            raise


def _read(path):
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _read_int(path):
    text = _read(path).strip()
    return int(text) if text.isdigit() else 0


def _keyed(path):
    values = {}
    for line in _read(path).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            values[parts[0]] = int(parts[1])
    return values


def _remove_tree(folder):
    """rmdir a cgroup and its children, deepest first (cgroup folders are removed with rmdir)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for child in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            child.rmdir()
        except OSError:
            pass
    try:
        folder.rmdir()
    except OSError:
        pass
