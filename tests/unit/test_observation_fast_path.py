"""The prefetch reader's plain-lab path (``_PatientParts._latest_lab_plainly``, issue #18
speed) reads an Observation exactly as the checked path does: the same latest lab of each kind,
weight, height and pregnancy, and the same error for what the checked path refuses."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.errors import InvalidInput
from ldncare.fhir.patient_bundle import (
    BODY_HEIGHT,
    BODY_WEIGHT,
    LOINC,
    PREGNANCY_STATUS,
    _PatientParts,
    _Where,
)

EGFR, CREATININE, ALT = "33914-3", "2160-0", "1742-6"
codes = st.sampled_from(
    [
        EGFR,
        CREATININE,
        ALT,
        BODY_WEIGHT,
        BODY_HEIGHT,
        PREGNANCY_STATUS,
        "8867-4",
        " 33914-3",
        "2160-0 ",
        "39156-5",
        2160,
    ]
)
codings = st.fixed_dictionaries(
    {"code": codes},
    optional={
        "system": st.sampled_from([LOINC, "http://snomed.info/sct", "", 5]),
        "display": st.sampled_from(["eGFR", "Creatinine", None, 3]),
    },
)
observations = st.fixed_dictionaries(
    {"resourceType": st.just("Observation"), "id": st.sampled_from(["o1", "o2", "o3"])},
    optional={
        "status": st.sampled_from(["final", "amended", "cancelled", "entered-in-error", 7]),
        "code": st.fixed_dictionaries({}, optional={"coding": st.lists(codings, max_size=3)})
        | st.just("not an object"),
        "effectiveDateTime": st.sampled_from(
            ["2026-01-05", "2025-11", "2026-03-01T08:00:00Z", "2026-02-30", "yesterday"]
        ),
        "issued": st.sampled_from(["2026-04-01T00:00:00Z"]),
        "valueQuantity": st.fixed_dictionaries(
            {"value": st.sampled_from([72, 1.4, 80.5, 0, "high"])},
            optional={"unit": st.sampled_from(["kg", "[lb_av]", "cm", "mg/dL", "furlong"])},
        ),
        "valueCodeableConcept": st.just({"coding": [{"code": "LA15173-0"}]}),
    },
)


def read(resources: list[dict[str, Any]], plain: bool) -> Any:
    """What the reader keeps of ``resources``, or the error it raises."""
    parts = _PatientParts({}, latest_labs_only=True)
    try:
        for i, r in enumerate(resources):
            where = _Where(i + 1, r)
            if plain:
                parts._observation(r, where)
            else:
                parts._observation_checked(r, where)
    except InvalidInput as exc:
        return ("error", str(exc), exc.field)
    latest = {
        kind: (rank, id(res), coding, when)
        for kind, (rank, res, _w, coding, when) in parts.latest.items()
    }
    return (latest, parts.weight, parts.height, parts.pregnant)


@settings(max_examples=400)
@given(st.lists(observations, min_size=1, max_size=4))
def test_plain_path_reads_what_the_checked_path_reads(resources: list[dict[str, Any]]) -> None:
    assert read(resources, plain=True) == read(resources, plain=False)


def test_latest_egfr_of_a_prefetch_is_kept_and_a_cancelled_one_ignored() -> None:
    def egfr(rid: str, day: str, value: float, status: str = "final") -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": rid,
            "status": status,
            "code": {"coding": [{"system": LOINC, "code": EGFR}]},
            "effectiveDateTime": day,
            "valueQuantity": {"value": value, "unit": "mL/min/1.73m2"},
        }

    resources = [
        egfr("old", "2025-01-01", 80),
        egfr("new", "2026-06-01", 25),
        egfr("void", "2026-09-01", 90, status="entered-in-error"),
    ]
    latest, *_ = read(resources, plain=True)
    assert latest["egfr"][1] == id(resources[1])


def test_padded_loinc_code_is_refused_on_the_plain_path_too() -> None:
    padded = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": " 33914-3"}]},
        "valueQuantity": {"value": 25},
    }
    error = read([padded], plain=True)
    assert error[0] == "error" and "whitespace" in error[1]
