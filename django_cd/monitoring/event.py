"""What a notification says about one deploy or rollback."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django_cd.pipeline.steps import Outcome

COMMITS_SHOWN = 20


@dataclass(frozen=True)
class DeployEvent:
    """A finished deploy or rollback, in the words people are told."""

    outcome: Outcome
    by: str
    #: (sha, subject) of the commits between the previous release and this one.
    commits: list[tuple[str, str]] = field(default_factory=list)
    previous_commit: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome.status == "success"

    @property
    def kind(self) -> str:
        """``success`` or ``failure``: what the notifiers' ``on`` lists."""
        return "success" if self.ok else "failure"

    def title(self) -> str:
        o = self.outcome
        verdict = {"success": "succeeded", "rolled_back": "FAILED and was rolled back"}.get(
            o.status, "FAILED"
        )
        return f"{o.action.capitalize()} of {o.release or '?'} to {o.env} {verdict}"

    def commit_range(self) -> str:
        new = (self.outcome.commit or "?")[:12]
        return f"{self.previous_commit[:12]}..{new}" if self.previous_commit else new

    def facts(self) -> list[tuple[str, str]]:
        """(label, value) pairs, in the order people read them."""
        o = self.outcome
        facts = [
            ("Environment", o.env),
            ("Release", o.release or "?"),
            ("Previous", o.previous or "none"),
            ("Commits", self.commit_range()),
            ("By", self.by),
            ("Duration", f"{o.seconds:.1f} s"),
            ("Outcome", o.status),
        ]
        if not self.ok:
            facts.append(("Failed step", o.failed_step or "?"))
            facts.append(("Error", (o.error or "").splitlines()[0] if o.error else "?"))
            facts.append(("Rollback", self.rollback_result()))
        return facts

    def rollback_result(self) -> str:
        o = self.outcome
        if not o.rollback_steps:
            return "nothing was switched" if o.action == "deploy" else "none"
        failed = [s.name for s in o.rollback_steps if s.status == "failed"]
        if failed:
            return f"INCOMPLETE (failed: {', '.join(failed)}): run manage.py repair"
        return f"{o.previous or 'the previous release'} serves again"

    def text(self) -> str:
        """The plain-text message (mail body)."""
        lines = [self.title(), ""]
        lines += [f"{label + ':':<13}{value}" for label, value in self.facts()]
        if self.commits:
            lines += ["", "Commits:"]
            lines += [f"  {sha[:12]} {subject}" for sha, subject in self.commits[:COMMITS_SHOWN]]
            if len(self.commits) > COMMITS_SHOWN:
                lines.append(f"  ... and {len(self.commits) - COMMITS_SHOWN} more")
        lines += [f"Warning: {w}" for w in self.outcome.warnings]
        return "\n".join(lines) + "\n"

    def slack(self) -> dict[str, Any]:
        """A Slack-compatible incoming-webhook payload (Mattermost and others read it too)."""
        commits = "\n".join(f"`{sha[:12]}` {subject}" for sha, subject in self.commits[:10])
        fields = [{"title": k, "value": v, "short": len(v) < 40} for k, v in self.facts()]
        if commits:
            fields.append({"title": "Commit list", "value": commits, "short": False})
        return {
            "text": self.title(),
            "attachments": [
                {
                    "color": "good" if self.ok else "danger",
                    "fallback": self.title(),
                    "fields": fields,
                }
            ],
        }
