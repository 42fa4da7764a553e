"""Findings: what screening decided, with the rule, the reason and the sources behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ldncare.evidence.models import Evidence

Severity = Literal["contraindication", "warning", "info"]
Eligibility = Literal["eligible", "eligible_with_cautions", "not_recommended"]
SEVERITY_ORDER: dict[str, int] = {"contraindication": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    rationale: str
    citations: tuple[str, ...]

    def to_contract(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "rationale": self.rationale,
            "citations": list(self.citations),
        }


class _Blank(dict[str, str]):
    """Leaves unknown placeholders visible rather than crashing on a wording change."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def finding(evidence: Evidence, rule_id: str, **values: object) -> Finding:
    """Instantiate the rule ``rule_id`` from the evidence base with message placeholders."""
    rule = evidence.rule(rule_id)
    fill = _Blank({k: str(v) for k, v in values.items()})
    return Finding(
        rule=rule.id,
        severity=rule.severity,
        message=rule.message.format_map(fill),
        rationale=rule.rationale.format_map(fill),
        citations=rule.citations,
    )


def eligibility(findings: tuple[Finding, ...]) -> Eligibility:
    severities = {f.severity for f in findings}
    if "contraindication" in severities:
        return "not_recommended"
    if "warning" in severities:
        return "eligible_with_cautions"
    return "eligible"
