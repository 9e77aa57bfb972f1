"""Errors of the deploy engine. Messages say what went wrong and what to do."""

from __future__ import annotations

import errno


class PipelineError(Exception):
    """A deploy, rollback or server action could not go on."""


class StepFailed(PipelineError):
    """One step of a deploy or rollback failed; ``output`` is its (masked) output."""

    def __init__(self, step: str, message: str, output: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.output = output


class Refused(StepFailed):
    """The predeploy gates asked of the new release failed: the deploy is refused."""

    def __init__(self, message: str) -> None:
        super().__init__("predeploy", message)


class StepSkipped(Exception):
    """Raised by a step that finds nothing to do; recorded as skipped, with the reason."""


class LockHeld(PipelineError):
    """Another deploy or rollback holds the environment's lock."""


#: What a failed write means and what to do, by errno.
_ADVICE = {
    errno.ENOSPC: "The disk holding {path} is full (ENOSPC): free space, then run again.",
    errno.EDQUOT: (
        "The disk quota of the deploying user is used up on the disk holding {path} (EDQUOT): "
        "free space or raise the quota, then run again."
    ),
    errno.EACCES: (
        "Permission denied writing {path} (EACCES): the deploying user must own the deploy "
        "root; fix its owner or modes (chown -R), then run again."
    ),
    errno.EPERM: (
        "Operation not permitted on {path} (EPERM): the deploying user must own the deploy "
        "root and belong to the environment's 'group'; fix that, then run again."
    ),
    errno.EROFS: (
        "The file system holding {path} is read-only (EROFS): remount it read-write, "
        "then run again."
    ),
}


def describe_os_error(error: OSError, near: str | None = None) -> str:
    """One sentence for an operator: what failed where, and what to do.

    ``near`` names the place when the error itself names no file (a tar member
    that did not fit, a write to an open file); the deploy root by default.
    """
    path = getattr(error, "filename", None) or near or "the deploy root"
    advice = _ADVICE.get(error.errno or 0)
    if advice is not None:
        return advice.format(path=path)
    reason = error.strerror or str(error)
    code = errno.errorcode.get(error.errno or 0, "")
    return f"Writing {path} failed: {reason}{f' ({code})' if code else ''}."
