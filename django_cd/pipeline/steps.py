"""Steps and outcomes: what a deploy or rollback did, step by step, with timings."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from django_cd.pipeline.errors import (
    PipelineError,
    Refused,
    StepFailed,
    StepSkipped,
    describe_os_error,
)
from django_cd.pipeline.secrets import mask

OUTPUT_TAIL_LINES = 40
DETAIL_LENGTH = 120
T = TypeVar("T")
_RECORDING = threading.Lock()


@dataclass
class StepResult:
    """One step: its name, ``ok``/``failed``/``skipped``, wall time and a short detail;
    in a deploy to several hosts, the host it ran on (``""``: the environment's only
    host, or a step run once for the environment)."""

    name: str
    status: str
    seconds: float
    detail: str = ""
    host: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        if not self.host:
            del data["host"]
        return data


@dataclass
class Outcome:
    """The result of a deploy or rollback, as the commands print it."""

    action: str
    env: str
    status: str = "failed"
    release: str | None = None
    commit: str | None = None
    url: str | None = None
    previous: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    rollback_steps: list[StepResult] = field(default_factory=list)
    failed_step: str | None = None
    error: str | None = None
    error_output: str = ""
    backup: str | None = None
    migrations: list[str] = field(default_factory=list)
    tag: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: The SSH hosts a fleet's command worked on, and those --skip-unreachable left out.
    hosts: list[str] = field(default_factory=list)
    skipped_hosts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [step.as_dict() for step in self.steps]
        data["rollback_steps"] = [step.as_dict() for step in self.rollback_steps]
        data["seconds"] = round(self.seconds, 3)
        return data


def tail(text: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class StepRunner:
    """Runs named steps, times them, reports each as it ends, masks secrets."""

    def __init__(
        self,
        results: list[StepResult],
        on_step: Callable[[StepResult], None] | None,
        secrets: Iterable[str],
        on_start: Callable[[str], None] | None = None,
        where: str | None = None,
        host: str = "",
    ) -> None:
        self.results = results
        self.on_step = on_step
        self.secrets = list(secrets)
        #: Called with a step's name before it starts (the journal records the intent).
        self.on_start = on_start
        #: The step running now: the one an interrupt interrupted.
        self.running: str | None = None
        #: The deploy root: where a full disk is, when an error names no file.
        self.where = where
        #: The host the steps run on, in a deploy to several (``StepResult.host``).
        self.host = host

    def on(self, host: str, where: str | None = None) -> StepRunner:
        """A runner for the steps run on ``host``, into the same results (thread-safe)."""
        return StepRunner(self.results, self.on_step, self.secrets, None, where, host)

    def mask(self, text: str) -> str:
        return mask(text, self.secrets)

    def run(self, name: str, action: Callable[[], str]) -> str:
        """Run ``action``; any failure is recorded and re-raised as ``StepFailed``.

        Not only the engine's own errors: a full disk, a corrupt file or a bug in a
        step goes through the same failure path (undo, history, a clear message).
        """
        started = time.monotonic()
        self.running = name
        try:
            if self.on_start is not None:
                self.on_start(name)
            detail = action()
        except StepSkipped as skipped:
            self.running = None
            self._record(name, "skipped", started, str(skipped))
            return str(skipped)
        except Refused as refused:  # the deploy was refused, not a step failed
            self._record(name, "failed", started, str(refused))
            raise Refused(self.mask(str(refused))) from None
        except StepFailed as error:
            self._record(name, "failed", started, str(error))
            raise StepFailed(name, self.mask(str(error)), self.mask(tail(error.output))) from None
        except PipelineError as error:
            self._record(name, "failed", started, str(error))
            raise StepFailed(name, self.mask(str(error))) from None
        except OSError as error:
            message = describe_os_error(error, self.where)
            self._record(name, "failed", started, message)
            raise StepFailed(name, self.mask(message)) from None
        except Exception as error:
            message = f"Unexpected error in step {name}: {type(error).__name__}: {error}"
            self._record(name, "failed", started, message)
            output = self.mask(tail(traceback.format_exc()))
            raise StepFailed(name, self.mask(message), output) from None
        self.running = None
        self._record(name, "ok", started, detail)
        return detail

    def run_value(self, name: str, action: Callable[[], T], describe: Callable[[T], str]) -> T:
        """Like ``run``, for a step whose value the caller needs."""
        holder: list[T] = []

        def step() -> str:
            holder.append(action())
            return describe(holder[0])

        self.run(name, step)
        return holder[0]

    def skip(self, name: str, why: str) -> None:
        self._record(name, "skipped", time.monotonic(), why)

    def _record(self, name: str, status: str, started: float, detail: str) -> None:
        first_line = self.mask(detail.strip().splitlines()[0]) if detail.strip() else ""
        if len(first_line) > DETAIL_LENGTH:
            first_line = first_line[: DETAIL_LENGTH - 3] + "..."
        result = StepResult(name, status, time.monotonic() - started, first_line, self.host)
        with _RECORDING:  # the hosts of a fleet run their steps in threads
            self.results.append(result)
            if self.on_step is not None:
                self.on_step(result)
