"""Safety invariants of the planned LDN schedule, for every patient hypothesis can build.

The patient varies in what shapes the schedule (naltrexone on record at any dose or none,
frailty, age, kidney and liver function, a planned operation) and the clinician's options vary
within their accepted ranges. Whatever the mix:

- no step is ever above the LDN maximum (4.5 mg);
- LDN on record is never restarted at the start dose: the first step is the current dose (or
  the lower target the clinician chose); LDN ordered but not taken (intended, on hold) is never
  begun at its ordered dose; full-dose or unreadable naltrexone gets no schedule;
- no step covers a planned operation: the schedule ends before it, or starts only after the
  opioid-free interval that follows it (also when the operation was a few days ago);
- the review date is what the rule says: review_weeks after the target is reached, never before
  the first day, and the last step runs to it.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldncare.core.quantity import Dose
from ldncare.core.titration import TitrationOptions
from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import patient_from_data
from ldncare.planning import make_plan

EVIDENCE = load_evidence()
AS_OF = date(2026, 11, 25)
MAX = Decimal("4.5")
HALVES = st.integers(min_value=1, max_value=9).map(lambda n: Decimal(n) / 2)  # 0.5 .. 4.5 mg

naltrexone = st.one_of(
    st.none(),
    st.tuples(st.just("low"), HALVES),
    st.tuples(st.just("full"), st.sampled_from([Decimal(25), Decimal(50), Decimal(100)])),
    st.tuples(st.just("unknown"), st.just(Decimal(0))),
)


@st.composite
def patients(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "h",
        "sex": draw(st.sampled_from(["female", "male"])),
        "birth_date": date(draw(st.integers(min_value=1925, max_value=2000)), 6, 1).isoformat(),
        "frail": draw(st.booleans()),
        "conditions": [{"name": "Pudendal neuralgia"}],
        "medications": [],
        "labs": [],
    }
    if draw(st.booleans()):
        data["conditions"].append({"name": "Cirrhosis of liver"})
    if draw(st.booleans()):
        data["conditions"].append({"name": "Chronic kidney disease stage 4"})
    egfr = draw(st.one_of(st.none(), st.integers(min_value=5, max_value=120)))
    if egfr is not None:
        data["labs"].append(
            {"test": "egfr", "value": egfr, "unit": "mL/min/1.73m2", "date": "2026-10-01"}
        )
    record = draw(naltrexone)
    if record is not None:
        kind, mg = record
        status = draw(st.sampled_from(["active", "active", "intended", "on-hold"]))
        med: dict[str, Any] = {"name": "Naltrexone", "status": status}
        if kind != "unknown":
            med["dose"] = f"{mg} mg at bedtime"
        if draw(st.booleans()):
            med["start"] = (AS_OF - timedelta(days=draw(st.integers(0, 720)))).isoformat()
        data["medications"].append(med)
    surgery = draw(st.one_of(st.none(), st.integers(min_value=-30, max_value=400)))
    if surgery is not None:
        data["planned_surgery"] = (AS_OF + timedelta(days=surgery)).isoformat()
    return data


@st.composite
def clinician_options(draw: st.DrawFn) -> TitrationOptions:
    def maybe(strategy: st.SearchStrategy[Any]) -> Any:
        return draw(st.one_of(st.none(), strategy))

    start_dose = maybe(st.sampled_from(["1", "1.5", "2"]))
    target = maybe(st.sampled_from(["2", "3", "3.5", "4", "4.5"]))
    return TitrationOptions(
        start=AS_OF,
        start_dose=Dose.mg(start_dose) if start_dose else None,
        target_dose=Dose.mg(target) if target else None,
        step_days=maybe(st.integers(min_value=7, max_value=21)),
        review_weeks=maybe(st.integers(min_value=8, max_value=12)),
        slow=draw(st.booleans()),
    )


def _dates(row: dict[str, Any]) -> tuple[date, date]:
    return date.fromisoformat(row["start_date"]), date.fromisoformat(row["end_date"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=patients(), options=clinician_options())
def test_every_planned_schedule_keeps_the_safety_invariants(
    data: dict[str, Any], options: TitrationOptions
) -> None:
    start, target = options.start_dose, options.target_dose
    if start is not None and target is not None and target < start:
        options = TitrationOptions(start=AS_OF, start_dose=options.start_dose)
    plan = make_plan(patient_from_data(data), as_of=AS_OF, titration=options)
    contract = plan.to_contract(EVIDENCE)
    ldn = contract["ldn"]
    rows = ldn["schedule"]
    meds = data["medications"]
    record = meds[0] if meds else None

    # Full-dose or unreadable naltrexone: no LDN schedule at all.
    if record is not None and "dose" not in record:
        assert rows == [] and ldn["course"]["kind"] == "withheld"
        return
    if record is not None and Decimal(record["dose"].split()[0]) > MAX:
        assert rows == [] and ldn["eligibility"] == "not_recommended"
        return
    if ldn["eligibility"] == "not_recommended":
        assert rows == []
        return
    assert rows, "an LDN candidate without a contraindication gets a schedule"

    doses = [Decimal(str(r["dose_mg"])) for r in rows]
    assert max(doses) <= MAX, "no schedule ever exceeds 4.5 mg"
    for a, b in pairwise(rows):
        assert _dates(b)[0] == _dates(a)[1] + timedelta(days=1), "steps are contiguous"

    # LDN ordered or on hold is not being taken: titrate from a start dose, never at its dose.
    taken = record is not None and record["status"] == "active"
    if record is not None and not taken:
        assert doses[0] <= EVIDENCE.ldn.start_dose.max.mg_value
        assert ldn["course"]["kind"] == "new"

    # LDN on record: continue or adjust from the current dose, never step 1 again.
    if taken:
        current = Decimal(record["dose"].split()[0])
        target = options.target_dose.mg_value if options.target_dose else MAX
        assert doses[0] == min(current, target), "no restart from step 1"
        assert ldn["course"]["kind"] in {"continue", "adjust"}
        assert ldn["course"]["current_dose"]["value"] == float(current)

    # Planned surgery: no step covers it or the opioid-free days that follow it.
    surgery = data.get("planned_surgery")
    first = _dates(rows[0])[0]
    if surgery is not None and date.fromisoformat(surgery) >= AS_OF:
        day = date.fromisoformat(surgery)
        free = EVIDENCE.ldn.opioid_free_days
        assert free is not None
        before = all(_dates(r)[1] < day for r in rows)
        after = first >= day + timedelta(days=free.short_acting)
        assert before or after, "no step overlaps the operation"
    elif surgery is not None:
        # Operated recently: the first dose waits for the opioid-free interval.
        free = EVIDENCE.ldn.opioid_free_days
        assert free is not None
        assert first >= date.fromisoformat(surgery) + timedelta(days=free.short_acting)

    # The review rule.
    weeks = options.review_weeks or EVIDENCE.ldn.defaults.review_weeks
    target_reached = date.fromisoformat(ldn["target_reached"])
    review = date.fromisoformat(ldn["review_date"])
    assert review == max(target_reached + timedelta(weeks=weeks), first)
    assert _dates(rows[-1])[1] == review
    if target_reached != _dates(rows[-1])[0]:
        # Only LDN already at the target counts its trial from before the plan.
        assert taken and len(rows) == 1 and target_reached < first
