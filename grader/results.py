"""Typed results of grading, from the worker to the gradebook.

Each step returns one of these instead of strings with prefixes: a ``Failure`` says what kind
of thing went wrong (the submission's fault or the grader's) and why, in words for the
instructor's problems table; a ``Verdict`` is the judge's decision on one test cell. All are
plain dataclasses: they pickle for Dask and turn into JSON for the spool.
"""

from dataclasses import asdict, dataclass, field
from enum import Enum


class FailureKind(str, Enum):
    UNREADABLE = "unreadable"          # not a notebook: empty, truncated, not JSON, invalid
    NOT_SUBMITTED = "not_submitted"    # a notebook of the assignment is missing
    NOT_PART = "not_part"              # a file that is no notebook of the assignment
    NOT_PREPARED = "not_prepared"      # nbgrader could not prepare it (broken grade cells)
    ANSWER_MISSING = "answer_missing"  # an answer cell was not found (note: graded as unanswered)
    TIMEOUT = "timeout"                # a cell, a test or the whole notebook ran too long
    KERNEL_DIED = "kernel_died"        # the kernel exited or crashed
    MEMORY = "memory"                  # the notebook hit its memory cap
    PROCESSES = "processes"            # the notebook hit its process cap
    OUTPUT_TOO_LARGE = "output_too_large"
    NOT_JUDGED = "not_judged"          # some test cells got no verdict
    GRADER = "grader"                  # the grader's own fault: --resume grades it again
    KILLED_WORKERS = "killed_workers"  # Dask gave up after it killed several workers

    @property
    def submissions_fault(self):
        return self is not FailureKind.GRADER


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    reason: str

    def as_dict(self):
        return {"kind": self.kind.value, "reason": self.reason}

    @classmethod
    def from_dict(cls, data):
        return cls(FailureKind(data["kind"]), str(data["reason"]))


@dataclass
class Verdict:
    """The judge's decision on one autograded test cell."""
    grade_id: str
    passed: bool
    output: str = ""                              # what the check printed
    error: tuple = None                           # (ename, evalue, traceback lines) when it failed
    answers: dict = field(default_factory=dict)   # name -> the answer as the test read it (normalised)
    check: str = None                             # which check failed (e.g. "output_and_loss")
    summary: str = None                           # the failure's class, without numbers
    kind: str = None                              # form | check | wrong_choice | error | timeout | not_run
    misconception: str = None
    seconds: float = 0.0                          # how long judging it took

    def as_dict(self):
        data = asdict(self)
        data["error"] = list(self.error) if self.error else None
        return data

    @classmethod
    def from_dict(cls, data):
        known = {key: data.get(key) for key in cls.__dataclass_fields__ if key in data}
        verdict = cls(**known)
        verdict.grade_id, verdict.passed = str(verdict.grade_id), verdict.passed is True
        if verdict.error is not None:
            ename, evalue, traceback = (list(verdict.error) + ["", "", []])[:3]
            verdict.error = (str(ename), str(evalue), [str(line) for line in traceback] if isinstance(traceback, list)
                             else [str(evalue)])
        verdict.answers = verdict.answers if isinstance(verdict.answers, dict) else {}
        return verdict


@dataclass
class Outcome:
    """What running one notebook gave: the executed notebook and the verdicts, or a failure."""
    executed: str = None                          # nbformat JSON
    verdicts: list = field(default_factory=list)  # [Verdict]
    failure: Failure = None                       # the notebook as a whole could not be graded
    notes: list = field(default_factory=list)     # [Failure] that did not stop it (a cap hit, a timeout)
    seconds: float = 0.0
    worker: str = None
