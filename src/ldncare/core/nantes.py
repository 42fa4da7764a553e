"""Score a clinician's Nantes checklist for pudendal neuralgia (labat2008). Pure: no I/O.

The criteria themselves are data (``evidence/data/nantes.yaml``, loaded into
``Evidence.nantes``); call ``assess_nantes(answers, evidence.nantes)``.

Result: ``exclusion_present`` if any exclusion item is answered yes; otherwise
``criteria_not_met`` if any essential item is answered no; otherwise ``incomplete`` while an
essential or exclusion item is unanswered; otherwise ``criteria_met``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from ldncare.errors import InvalidInput
from ldncare.evidence.nantes import NantesCriteria, NantesStatus


class NantesResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: NantesStatus
    meaning: str
    citations: tuple[str, ...]
    essential_present: tuple[str, ...]
    #: Essential items answered "no".
    essential_absent: tuple[str, ...]
    exclusions_present: tuple[str, ...]
    complementary_present: tuple[str, ...]
    associated_present: tuple[str, ...]
    #: Essential and exclusion items with no answer (``None`` or missing).
    unanswered: tuple[str, ...]

    def citation_ids(self) -> tuple[str, ...]:
        return self.citations

    def to_contract(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def assess_nantes(
    answers: Mapping[str, bool | None], criteria: NantesCriteria | None
) -> NantesResult:
    """Apply the Nantes criteria to ``answers`` (item id -> yes/no/unknown)."""
    if criteria is None:
        raise InvalidInput("the Nantes criteria are not in the loaded evidence (nantes.yaml)")
    known = {item.id for item in criteria.items}
    unknown = sorted(k for k in answers if k not in known)
    if unknown:
        raise InvalidInput(
            f"unknown Nantes item(s) {', '.join(unknown)}; accepted: "
            + ", ".join(item.id for item in criteria.items),
            field="nantes",
        )
    for key, value in answers.items():
        if value is not None and not isinstance(value, bool):
            raise InvalidInput(
                f"answer {value!r} is not yes/no; use true, false or null", field=f"nantes.{key}"
            )

    def ids(kind: str, wanted: bool | None) -> tuple[str, ...]:
        return tuple(i.id for i in criteria.items if i.kind == kind and answers.get(i.id) is wanted)

    essential_present = ids("essential", True)
    essential_absent = ids("essential", False)
    exclusions_present = ids("exclusion", True)
    unanswered = ids("essential", None) + ids("exclusion", None)
    status: NantesStatus
    if exclusions_present:
        status = "exclusion_present"
    elif essential_absent:
        status = "criteria_not_met"
    elif unanswered:
        status = "incomplete"
    else:
        status = "criteria_met"
    return NantesResult(
        status=status,
        meaning=criteria.meaning[status],
        citations=criteria.citations,
        essential_present=essential_present,
        essential_absent=essential_absent,
        exclusions_present=exclusions_present,
        complementary_present=ids("complementary", True),
        associated_present=ids("associated", True),
        unanswered=unanswered,
    )
