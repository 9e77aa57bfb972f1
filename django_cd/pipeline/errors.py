"""Errors of the deploy engine. Messages say what went wrong and what to do."""

from __future__ import annotations


class PipelineError(Exception):
    """A deploy, rollback or server action could not go on."""


class StepFailed(PipelineError):
    """One step of a deploy or rollback failed; ``output`` is its (masked) output."""

    def __init__(self, step: str, message: str, output: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.output = output


class LockHeld(PipelineError):
    """Another deploy or rollback holds the environment's lock."""
