"""Dangerous combinations the patient already takes, as top-level plan findings.

The options (core/options.py) judge a medicine that might be added; a combination already on
the medication list needs a finding of its own, whatever ldncare is asked about (issue 14,
second review, section C item 4). Pure: reads the classified context, returns findings from
``rules/current_combinations.yaml``. The LDN verdict is not changed by them (core/plan.py):
they are about the medicines already taken, not about LDN.
"""

from __future__ import annotations

from collections.abc import Iterable

from ldncare.core.context import ClinicalContext
from ldncare.core.findings import Finding, finding
from ldncare.core.patient import MedicationUse
from ldncare.evidence.models import Evidence

#: Classes of which two different medicines at once are a duplicate (kind shown in the text).
DUPLICATE_CLASSES: tuple[tuple[str, str], ...] = (
    ("snri", "SNRIs"),
    ("tca", "tricyclic antidepressants"),
    ("gabapentinoid", "gabapentinoids"),
)


def _key(med: MedicationUse) -> str:
    """One entry per medicine: the same name written twice (two strengths) counts once."""
    words = med.name.lower().split()
    return words[0] if words else med.name.lower()


def _distinct(meds: Iterable[MedicationUse]) -> list[MedicationUse]:
    seen: dict[str, MedicationUse] = {}
    for med in meds:
        seen.setdefault(_key(med), med)
    return list(seen.values())


def _names(meds: Iterable[MedicationUse]) -> str:
    return ", ".join(dict.fromkeys(m.name for m in meds))


def current_combinations(ctx: ClinicalContext, evidence: Evidence) -> tuple[Finding, ...]:
    """Findings for combinations among the active medicines (none with fewer than two)."""
    out: list[Finding] = []
    serotonergic = _distinct(ctx.active_meds("serotonergic"))
    maois = _distinct(ctx.active_meds("maoi"))
    if maois:
        maoi_keys = {_key(m) for m in maois}
        partners = [m for m in serotonergic if _key(m) not in maoi_keys]
        if len(maois) > 1:
            partners = maois[1:] + partners
            maois = maois[:1]
        if partners:
            out.append(
                finding(
                    evidence,
                    "combination.maoi_serotonergic",
                    maoi=_names(maois),
                    meds=_names(partners),
                )
            )
    elif len(serotonergic) > 1:
        out.append(finding(evidence, "combination.serotonergic", meds=_names(serotonergic)))
    for cls, kind in DUPLICATE_CLASSES:
        same = _distinct(ctx.active_meds(cls))
        if len(same) > 1:
            out.append(finding(evidence, "combination.same_class", meds=_names(same), kind=kind))
    seizure = _distinct(ctx.active_meds("seizure_threshold_lowering"))
    tramadol = _distinct(ctx.active_meds("tramadol"))
    if seizure and tramadol:
        out.append(
            finding(
                evidence,
                "combination.tramadol_bupropion",
                meds=_names(seizure),
                tramadol=_names(tramadol),
            )
        )
    return tuple(out)
