"""What changed for a patient between two plans, e.g. a re-assessment under a newer evidence base.

A clinician who re-assesses a patient after the evidence base has been updated needs to see what
the update means for *this* patient: which statements in the plan are new, gone or reworded,
and which decisions moved (LDN eligibility, a finding that appeared, disappeared or changed
severity, an alternative whose suitability changed, the LDN maximum). Pure: compares two plan
contracts (``ldncare.plan/1``), stored or fresh; a plan stored before the contract carried its
evidence version reads as "not recorded".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ldncare.core.plan_contract import PlanContract, read_plan


@dataclass(frozen=True)
class Moved:
    """One decision that is not what it was: ``what`` (e.g. ``ldn.eligibility``), before, after."""

    what: str
    before: str | None
    after: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"what": self.what, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class PlanChanges:
    evidence_before: Mapping[str, str] | None
    evidence_after: Mapping[str, str] | None
    statements_added: tuple[str, ...] = ()
    statements_removed: tuple[str, ...] = ()
    statements_changed: tuple[str, ...] = ()
    decisions: tuple[Moved, ...] = field(default_factory=tuple)

    @property
    def new_evidence_base(self) -> bool:
        return self.evidence_before != self.evidence_after

    @property
    def nothing_changed(self) -> bool:
        return not (
            self.statements_added
            or self.statements_removed
            or self.statements_changed
            or self.decisions
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "evidence_before": dict(self.evidence_before) if self.evidence_before else None,
            "evidence_after": dict(self.evidence_after) if self.evidence_after else None,
            "new_evidence_base": self.new_evidence_base,
            "statements_added": list(self.statements_added),
            "statements_removed": list(self.statements_removed),
            "statements_changed": list(self.statements_changed),
            "decisions": [d.to_json() for d in self.decisions],
        }


def _statements(plan: PlanContract) -> dict[str, str]:
    return {s.statement: s.text for part in plan.guidance.sections().values() for s in part}


def _findings(plan: PlanContract) -> dict[str, str]:
    return {f.rule: f.severity for f in plan.ldn.findings}


def _options(plan: PlanContract) -> dict[str, str]:
    return {o.drug: o.suitability for o in plan.options}


def _moved(prefix: str, before: Mapping[str, str], after: Mapping[str, str]) -> Iterable[Moved]:
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            yield Moved(f"{prefix}{key}", before.get(key), after.get(key))


def _release(plan: PlanContract) -> dict[str, str] | None:
    return None if plan.evidence is None else plan.evidence.model_dump(mode="json")


def compare_plans(
    earlier: PlanContract | Mapping[str, Any], later: PlanContract | Mapping[str, Any]
) -> PlanChanges:
    """What ``later`` says differently from ``earlier`` for the same patient."""
    before, after = read_plan(earlier), read_plan(later)
    old, new = _statements(before), _statements(after)
    decisions: list[Moved] = []
    if before.ldn.eligibility != after.ldn.eligibility:
        decisions.append(Moved("ldn.eligibility", before.ldn.eligibility, after.ldn.eligibility))
    old_max, new_max = before.ldn.max_daily_dose_mg, after.ldn.max_daily_dose_mg
    if old_max != new_max:
        decisions.append(Moved("ldn.max_daily_dose", f"{old_max:g} mg", f"{new_max:g} mg"))
    decisions += _moved("finding ", _findings(before), _findings(after))
    decisions += _moved("option ", _options(before), _options(after))
    return PlanChanges(
        evidence_before=_release(before),
        evidence_after=_release(after),
        statements_added=tuple(sorted(set(new) - set(old))),
        statements_removed=tuple(sorted(set(old) - set(new))),
        statements_changed=tuple(sorted(k for k in set(old) & set(new) if old[k] != new[k])),
        decisions=tuple(decisions),
    )


def describe_changes(changes: PlanChanges) -> list[str]:
    """The changes as lines for a clinician."""

    def base(ev: Mapping[str, str] | None) -> str:
        if not ev:
            return "an evidence base not recorded (plan made before versioning)"
        return f"evidence base {ev['version']} (reviewed up to {ev['reviewed_up_to']})"

    lines = [
        f"Earlier plan: {base(changes.evidence_before)}; "
        f"later plan: {base(changes.evidence_after)}."
    ]
    if changes.nothing_changed:
        lines.append("Nothing in the plan changed for this patient.")
        return lines
    for label, ids in (
        ("Statements added", changes.statements_added),
        ("Statements removed", changes.statements_removed),
        ("Statements reworded", changes.statements_changed),
    ):
        if ids:
            lines.append(f"{label}: {', '.join(ids)}")
    for d in changes.decisions:
        lines.append(f"Decision moved: {d.what}: {d.before or 'none'} -> {d.after or 'none'}")
    return lines
