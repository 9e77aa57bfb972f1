"""What a gate answers, and the report of every gate for one commit and environment."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Gate:
    """One gate's answer: ``result`` is ``ok``, ``warn`` or ``fail``; ``hint`` says what to do.

    ``overridable`` marks the policy gates that ``--force --reason`` may pass
    (promotion, required pipelines, deploy window, risky migrations); a
    broken settings module or an unreachable database cannot be forced.
    """

    name: str
    result: str
    message: str
    hint: str = ""
    overridable: bool = False

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "result": self.result,
            "message": self.message,
            "hint": self.hint,
        }

    def forced(self, reason: str) -> Gate:
        """This failure passed on by ``--force``: a warning that says so."""
        if self.result != FAIL or not self.overridable:
            return self
        return replace(self, result=WARN, message=f"{self.message} Forced: {reason}")


def ok(name: str, message: str, hint: str = "") -> Gate:
    return Gate(name, OK, message, hint)


def warn(name: str, message: str, hint: str = "") -> Gate:
    return Gate(name, WARN, message, hint)


def fail(name: str, message: str, hint: str = "", *, overridable: bool = False) -> Gate:
    return Gate(name, FAIL, message, hint, overridable)


@dataclass
class Report:
    """Every gate for deploying ``commit`` (from ``ref``) to ``env``."""

    env: str
    ref: str
    commit: str | None = None
    gates: list[Gate] = field(default_factory=list)
    force_reason: str | None = None
    deployer: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no gate failed (warnings do not stop a deploy)."""
        return all(gate.result != FAIL for gate in self.gates)

    def add(self, gate: Gate) -> Gate:
        # One line each, whatever the tools said (a table row, a JSON string).
        gate = replace(
            gate, message=" ".join(gate.message.split()), hint=" ".join(gate.hint.split())
        )
        if self.force_reason:
            gate = gate.forced(self.force_reason)
        # One verdict a gate: a later look (the disk, once the release is unpacked)
        # replaces the earlier one.
        self.gates = [g for g in self.gates if g.name != gate.name]
        self.gates.append(gate)
        return gate

    def counts(self) -> dict[str, int]:
        return {kind: sum(1 for g in self.gates if g.result == kind) for kind in (OK, WARN, FAIL)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "env": self.env,
            "ref": self.ref,
            "commit": self.commit,
            "gates": [gate.as_dict() for gate in self.gates],
        }

    def refusal(self) -> str:
        """Each failed gate with what is wrong and what to do."""
        failed = [g for g in self.gates if g.result == FAIL]
        names = ", ".join(g.name for g in failed)
        lines = [f"Predeploy gates failed ({names}): nothing was changed."]
        for gate in failed:
            lines.append(f"  {gate.name}: {gate.message}")
            if gate.hint:
                lines.append(f"    {gate.hint}")
        return "\n".join(lines)

    def record(self) -> dict[str, Any]:
        """What a deploy records in its history entry and manifest."""
        return {
            "force_reason": self.force_reason,
            "deployer": self.deployer,
            "gates": {gate.name: gate.result for gate in self.gates},
        }
