"""One home for the grader's limits and the paths of its sandboxes.

Every other module imports these; none defines its own. ``Limits`` travels with each notebook
(to a local worker or a Dask worker) as a plain dict.
"""

from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 300.0        # the whole notebook, kernel start and judging included
    cell_seconds: float = 60.0         # one cell, or one test's requests to the kernel
    memory_mib: int = 2048             # all processes of one notebook together (cgroup)
    address_space_mib: int = 4096      # any one process of the notebook (RLIMIT_AS): TensorFlow maps ~2.3 GiB
    max_processes: int = 128           # processes and threads of one notebook together (cgroup pids)
    cpus: float = 1.0                  # CPU time of one notebook, in cores (cgroup cpu quota)
    max_output_bytes: int = 20 * 2**20  # what one notebook's results may weigh

    def as_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


# Inside a worker's sandbox (grader.sandbox, grader.zygote):
SPOOL = Path("/tmp/spool")           # the worker's job folders
CGROUPS = Path("/tmp/cgroup")        # the worker's delegated cgroups, one folder per controller
# Inside one job (forked by the zygote):
KERNEL_VIEW = Path("/tmp/submission")  # the kernel's folder: its working directory and home, nothing else
JOB_VIEW = Path("/tmp/job")            # the driver's view: the job's files and the kernel's folder
KERNEL_FOLDER = "kernel"               # name of the kernel's folder inside a job folder
JOB_FILE = "job.json"                  # the notebook to run and its settings (never visible to the kernel)
OUTPUT_FILE = "output.ipynb"           # the executed notebook, judged test cells included
VERDICTS_FILE = "verdicts.json"        # one typed verdict per autograded test cell

SANDBOX_UID = 65534  # the host user a sandbox runs as when the grader runs as root (nobody)
KERNEL_FILE_BYTES = 512 * 2**20  # the largest file a notebook's code may write
