"""What each ldncare hook says, decided by the core; this module only translates.

- **patient-view** (``ldncare-patient-view``):
  1. *Safety*: an active naltrexone together with an active opioid -> critical card; the basis is
     the core screening rule ``ldn.opioid.active``.
  2. *Review due*: an active naltrexone order at a low dose (at most the LDN maximum in
     ``ldn.yaml``, read from the dose text or product name) that started at least the minimum
     trial length (``ldn.yaml`` ``trial_weeks.min``) ago -> info card. Orders without a
     readable dose or start date get no card: ldncare cannot tell LDN from 50 mg naltrexone.
  3. *Consider LDN*: an active pudendal-neuralgia diagnosis, no naltrexone yet, and the core
     plan does not find LDN ``not_recommended`` -> info card with the plan's cautions.
- **order-select / order-sign** (``ldncare-order-select``, ``ldncare-order-sign``), on the draft
  MedicationRequests (for order-select only the ``selections``):
  1. naltrexone ordered while the core finds a contraindication (an active or recently stopped
     opioid, counting opioids ordered alongside) -> critical card, suggestion: remove the order;
  2. an opioid ordered for a patient on naltrexone -> critical card (rule ``ldn.opioid.active``),
     suggestion: remove the opioid order;
  3. gabapentin or pregabalin ordered above the daily maximum of the patient's renal band (core
     ``estimate_renal_function`` + the monograph's ``renal_bands``) -> warning card with a
     suggestion that rewrites the order at the largest dose whole units of the ordered product
     give within the band, as often as the band says (core ``dose_in_whole_units``); when no
     whole number of units fits, the limit in words and a suggestion to remove the order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from ldncare.cdshooks.cards import finding_detail, make_card, reference_lines
from ldncare.cdshooks.fetch import bare_id, resources_in
from ldncare.core.context import readable as readable_medicine
from ldncare.core.naltrexone import consider_ldn, reviews_due
from ldncare.core.orders import (
    DraftOrder,
    OrderTiming,
    RenalDoseTooHigh,
    daily_mg,
    decide_orders,
    needs_check,
)
from ldncare.core.patient import MedicationUse, Patient
from ldncare.core.quantity import format_decimal, parse_dose
from ldncare.core.screening import screen
from ldncare.core.unit_dose import UnitDose
from ldncare.errors import LdncareError
from ldncare.evidence.loader import load_evidence
from ldncare.evidence.vocabulary import load_vocabulary
from ldncare.fhir.patient_bundle import (
    find_medication,
    medication_from_resource,
    patient_from_bundle,
    patient_from_resources,
    reads_nothing_of,
)
from ldncare.fhir.references import full_urls, index_resources, literal_patient_id, refers_to
from ldncare.planning import context_for

log = logging.getLogger(__name__)

_PATIENT_DATA = frozenset(
    {
        "Condition",
        "MedicationRequest",
        "MedicationStatement",
        "Observation",
        "AllergyIntolerance",
        "Medication",
    }
)
#: What build_patient reads (DSTU2 MedicationOrder as a MedicationRequest).
_READ = _PATIENT_DATA | {"MedicationOrder"}
_PERIOD_PER_DAY = {"d": Decimal(1), "h": Decimal(24), "wk": Decimal(1) / 7, "min": Decimal(1440)}


@dataclass(frozen=True)
class HookCall:
    """One hook request, reduced to what the decisions need."""

    hook: str
    patient_id: str | None
    context: Mapping[str, Any]
    resources: tuple[dict[str, Any], ...]
    as_of: date
    app_url: str
    #: The ``fullUrl`` of the prefetched resources that came in Bundles, by ``id()``: an
    #: absolute or ``urn:uuid`` reference to one resolves as on import (fhir/references.py).
    full_urls: Mapping[int, str] = field(default_factory=dict)
    #: The draft orders, when the service has read them already (to tell whether there is
    #: anything to check): read once per call.
    drafts: DraftOrders | None = None


@dataclass(frozen=True)
class DraftMedication:
    """A FHIR draft order and what the core decides on: :class:`~ldncare.core.orders.DraftOrder`."""

    resource: dict[str, Any]
    order: DraftOrder

    @property
    def med(self) -> MedicationUse:
        return self.order.med

    @property
    def classes(self) -> frozenset[str]:
        return self.order.classes

    @property
    def reference(self) -> str | None:
        return self.order.reference


# --------------------------------------------------------------------------- FHIR -> Patient


def _legacy(resource: dict[str, Any]) -> dict[str, Any]:
    """DSTU2 ``MedicationOrder`` (old spec examples) read as a MedicationRequest."""
    if resource.get("resourceType") != "MedicationOrder":
        return resource
    out = {k: v for k, v in resource.items() if k not in {"dateWritten", "patient"}}
    out["resourceType"] = "MedicationRequest"
    if "dateWritten" in resource:
        out["authoredOn"] = resource["dateWritten"]
    if "patient" in resource:
        out["subject"] = resource["patient"]
    out.setdefault("intent", "order")
    return out


def _bundle(
    patient: Mapping[str, Any],
    others: Iterable[Mapping[str, Any]],
    urls: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    # The reader only reads: the resources are wrapped, not copied. Each keeps the fullUrl it
    # came with, so the Bundle reader resolves its references exactly as on import.
    urls = urls or {}
    entries: list[dict[str, Any]] = [{"resource": patient}]
    for r in others:
        url = urls.get(id(r))
        entries.append({"fullUrl": url, "resource": r} if url else {"resource": r})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def names_another_patient(resource: Mapping[str, Any], pid: str) -> bool:
    """Whether ``resource`` clearly names a Patient other than ``pid`` (see below)."""
    return _names_another_patient(resource, pid, f"Patient/{pid}")


def _names_another_patient(resource: Mapping[str, Any], pid: str, own: str) -> bool:
    """Whether ``subject``/``patient`` clearly points at a Patient other than ``pid``.

    ``own`` is ``Patient/{pid}``, the usual reference, checked before any parsing. A reference
    ldncare cannot resolve to a Patient id (``urn:uuid:``, none at all) is kept: prefetch and
    fallback queries are per patient, so it is this patient's.
    """
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if ref is None:
            continue
        target = ref.get("reference") if type(ref) is dict or isinstance(ref, Mapping) else None
        if target == own:
            return False
        if isinstance(target, str):
            named = literal_patient_id(target)
            if named is not None:
                return named != pid
    return False


def readable(med: MedicationUse) -> MedicationUse:
    """``med`` named by words when its record names it only by an RxNorm code the vocabulary
    knows (``"1049621"`` -> ``"oxycodone hydrochloride 5 MG Oral Tablet (RxNorm 1049621)"``):
    a card never shows a bare code when a name is available. The core's rule
    (:func:`ldncare.core.context.readable`), applied here too because cards also name the
    drafts and the patient's medicines outside the screening."""
    return readable_medicine(med, load_vocabulary().medications)


def _readable_patient(patient: Patient) -> Patient:
    meds = tuple(readable(m) for m in patient.medications)
    if all(a is b for a, b in zip(meds, patient.medications, strict=True)):
        return patient
    return patient.model_copy(update={"medications": meds})


def build_patient(
    patient_id: str | None,
    resources: Sequence[dict[str, Any]],
    urls: Mapping[int, str] | None = None,
) -> Patient:
    """The core Patient, its medications named by words where the record gives only a code
    (:func:`readable`); see :func:`_build_patient`. ``urls``: the resources' ``fullUrl``
    (:func:`ldncare.fhir.references.full_urls`)."""
    return _readable_patient(_build_patient(patient_id, resources, urls or {}))


def _build_patient(
    patient_id: str | None, resources: Sequence[dict[str, Any]], urls: Mapping[int, str]
) -> Patient:
    """The core Patient from prefetch/fetched resources; unreadable resources are skipped, and
    so are resources whose subject is another patient (an EHR's prefetch bug must not put
    someone else's opioid or diagnosis on this chart).

    Only the latest lab of each kind is kept (what the core's decisions read): see
    ``patient_from_bundle(latest_labs_only=True)``. The usual prefetch is read once
    (:func:`_read_prefetch`); one with anything unreadable in it is read again by
    :func:`_read_via_bundle`, which finds the culprits and leaves them out.
    """
    pid = patient_id or "unknown"
    chosen = next(
        (
            r
            for r in resources
            if r.get("resourceType") == "Patient" and bare_id(r.get("id")) == pid
        ),
        None,
    )
    try:
        head = chosen if chosen is not None else {"resourceType": "Patient", "id": pid}
        return _read_prefetch(patient_id, head, resources, urls)
    except (LdncareError, ValueError, TypeError, AttributeError):
        pass  # something unreadable: read again the long way, which finds and drops it
    return _read_via_bundle(patient_id, chosen, resources, urls)


def _read_via_bundle(
    patient_id: str | None,
    chosen: Mapping[str, Any] | None,
    resources: Sequence[dict[str, Any]],
    urls: Mapping[int, str],
) -> Patient:
    """The prefetch wrapped into a Bundle and read by the importer's Bundle reader; on an
    error, each resource is tried alone and the unreadable ones are dropped (and so is an
    unreadable Patient, for a stub with the id of the call)."""
    pid = patient_id or "unknown"
    stub = {"resourceType": "Patient", "id": pid}
    # The fullUrls matter for the Medications references name (kept as they are by _legacy).
    others = [_legacy(r) for r in resources if r.get("resourceType") in _READ]
    if patient_id is not None:
        own = f"Patient/{pid}"
        foreign = [r for r in others if _names_another_patient(r, pid, own)]
        if foreign:
            _log_foreign(pid, foreign)
            others = [r for r in others if all(r is not f for f in foreign)]
    head = chosen if chosen is not None else stub
    try:
        return patient_from_bundle(_bundle(head, others, urls), latest_labs_only=True)
    except (LdncareError, ValueError, TypeError, AttributeError) as exc:
        log.info("CDS patient %s: dropping unreadable resources (%s)", pid, exc)
    try:
        patient_from_bundle(_bundle(head, []), latest_labs_only=True)
    except (LdncareError, ValueError, TypeError, AttributeError):
        head = stub
    kept = []
    for r in others:
        try:
            patient_from_bundle(_bundle(stub, [r], urls), latest_labs_only=True)
        except (LdncareError, ValueError, TypeError, AttributeError):
            continue
        kept.append(r)
    return patient_from_bundle(_bundle(head, kept, urls), latest_labs_only=True)


def _read_prefetch(
    patient_id: str | None,
    head: Mapping[str, Any],
    resources: Sequence[dict[str, Any]],
    urls: Mapping[int, str],
) -> Patient:
    """The common case of :func:`_build_patient`, every resource readable: each resource read
    once, straight into the core's patient by the importer's own per-resource rules
    (:func:`ldncare.fhir.patient_bundle.patient_from_resources`), with no Bundle built and
    re-read. Observations with no code ldncare reads are dropped before anything else is done
    with them. Raises what the Bundle reader would raise; the caller then drops the culprits."""
    pid = patient_id or "unknown"
    own = f"Patient/{pid}"
    kept: list[dict[str, Any]] = []
    foreign: list[dict[str, Any]] = []
    any_medication = False
    for r in resources:
        rtype = r.get("resourceType")
        if rtype not in _READ or (rtype == "Observation" and reads_nothing_of(r)):
            continue
        if rtype == "MedicationOrder":
            r = _legacy(r)
        elif rtype == "Medication":
            any_medication = True
        if patient_id is not None and _names_another_patient(r, pid, own):
            foreign.append(r)
        else:
            kept.append(r)
    # Only a medicationReference needs the index (the importer's own: fhir/references.py).
    medications = medication_index(kept, urls) if any_medication else {}
    patient = patient_from_resources(head, kept, medications)
    if foreign:  # logged once, by whichever reading succeeds
        _log_foreign(pid, foreign)
    return patient


def _log_foreign(pid: str, foreign: Sequence[Mapping[str, Any]]) -> None:
    log.warning(
        "CDS patient %s: ignoring %d resource(s) about another patient (%s)",
        pid,
        len(foreign),
        ", ".join(sorted({f"{r.get('resourceType')}/{r.get('id')}" for r in foreign})),
    )


@dataclass(frozen=True)
class DraftOrders:
    """The draft medication orders of an order hook.

    ``checked`` get the cards: for order-select the selected orders, for order-sign all of
    them. ``all`` is every draft: an opioid drafted alongside a selected naltrexone order is
    unsigned but on its way, so it counts when the selected order is checked.
    """

    checked: list[DraftMedication]
    all: list[DraftMedication]


def _selected(selections: Iterable[str], resource: Mapping[str, Any]) -> bool:
    # A DSTU2 request selects "MedicationOrder/x": the draft was read as a MedicationRequest.
    rid = resource.get("id")
    if not isinstance(rid, str) or not rid:
        return False
    return any(
        refers_to(s, kind, rid)
        for s in selections
        for kind in ("MedicationRequest", "MedicationOrder")
    )


def _drafts_source(context: Mapping[str, Any]) -> Any:
    source = context.get("draftOrders")
    if source is None:
        source = context.get("medications")  # medication-prescribe and pre-1.0 examples
    return source


def draft_orders(
    hook: str,
    context: Mapping[str, Any],
    resources: Sequence[Mapping[str, Any]] = (),
    urls: Mapping[int, str] | None = None,
) -> DraftOrders:
    """Read the drafts of ``context`` (``draftOrders``; ``medications`` in pre-1.0 requests).

    A draft that names its drug by ``medicationReference`` is resolved by
    :mod:`ldncare.fhir.references` (as the importer resolves it) against the Medication
    resources in the drafts' Bundle and in ``resources`` (prefetch; ``urls`` their fullUrls).
    For order-select with ``selections`` that name none of the medication drafts (a lab or
    imaging order was selected), nothing is checked.
    """
    source = _drafts_source(context)
    found = [_legacy(r) for r in resources_in(source)]
    draft_urls = full_urls(source)
    orders = [r for r in found if r.get("resourceType") == "MedicationRequest"]
    # The index only serves a medicationReference: the usual draft names its drug by a code.
    medications = (
        medication_index([*found, *resources], {**(urls or {}), **draft_urls})
        if any("medicationReference" in r for r in orders)
        else {}
    )
    drafts = read_drafts(orders, medications)
    selections = context.get("selections")
    if hook == "order-sign" or not isinstance(selections, list) or not selections:
        return DraftOrders(drafts, drafts)
    wanted = [s.strip() for s in selections if isinstance(s, str)]
    # A draft may be selected by its Bundle fullUrl ("urn:uuid:..."), as a draft without an id
    # can only be.
    return DraftOrders(
        [
            d
            for d in drafts
            if _selected(wanted, d.resource) or draft_urls.get(id(d.resource)) in wanted
        ],
        drafts,
    )


def unresolved_medications(
    context: Mapping[str, Any],
    resources: Sequence[Mapping[str, Any]] = (),
    urls: Mapping[int, str] | None = None,
) -> list[str]:
    """References of draft orders' ``medicationReference`` that neither the drafts' Bundle nor
    ``resources`` (prefetch) holds: unread, the drug of the order is unknown (a naltrexone
    order could go unchecked), so the service fetches them or answers 412. Contained
    references (``#x``) are the draft's own business and are not listed."""
    source = _drafts_source(context)
    found = [_legacy(r) for r in resources_in(source)]
    wanted: list[str] = []
    for r in found:
        if r.get("resourceType") != "MedicationRequest" or "medicationCodeableConcept" in r:
            continue
        ref_obj = r.get("medicationReference")
        ref = ref_obj.get("reference") if isinstance(ref_obj, Mapping) else None
        if isinstance(ref, str) and ref.strip() and not ref.startswith("#"):
            wanted.append(ref.strip())
    if not wanted:  # the usual draft names its drug by a code: no index to build
        return []
    index = medication_index([*found, *resources], {**(urls or {}), **full_urls(source)})
    refs: list[str] = []
    for ref in wanted:
        if find_medication(ref, index) is None and ref not in refs:
            refs.append(ref)
    return refs


def medication_index(
    resources: Iterable[Mapping[str, Any]], urls: Mapping[int, str]
) -> dict[str, Mapping[str, Any]]:
    """Medication resources by every key a reference may use (``Medication/id``, fullUrl):
    :func:`ldncare.fhir.references.index_resources`, the importer's own index."""
    return index_resources(
        (urls.get(id(r)), r) for r in resources if r.get("resourceType") == "Medication"
    )


def read_drafts(
    drafts: Sequence[dict[str, Any]], medications: Mapping[str, Mapping[str, Any]] | None = None
) -> list[DraftMedication]:
    vocab = load_vocabulary().medications
    out: list[DraftMedication] = []
    for resource in drafts:
        try:
            med = medication_from_resource(resource, medications)
        except (LdncareError, ValueError, TypeError, AttributeError) as exc:
            log.info("CDS draft order %s unreadable: %s", resource.get("id"), exc)
            continue
        if med is None:
            continue
        # A draft is about to start: screen it as if it were active from today.
        med = readable(med).model_copy(update={"status": "active", "start": None, "end": None})
        classes = vocab.classify(med)
        rid = resource.get("id")
        order = DraftOrder(
            med,
            classes,
            # Only a gabapentinoid's daily dose is checked (renal bands).
            ordered_daily_mg(resource) if "gabapentinoid" in classes else None,
            f"MedicationRequest/{rid}" if isinstance(rid, str) and rid else None,
        )
        out.append(DraftMedication(resource, order))
    return out


# --------------------------------------------------------------------------- decisions


def _delete(label: str, ref: str | None) -> list[dict[str, Any]]:
    if ref is None:
        return []
    return [
        {"label": label, "actions": [{"type": "delete", "description": label, "resourceId": ref}]}
    ]


def patient_view_cards(call: HookCall) -> list[dict[str, Any]]:
    evidence = load_evidence()
    patient = build_patient(call.patient_id, call.resources, call.full_urls)
    ctx = context_for(patient, call.as_of)
    findings = screen(ctx, evidence)
    cards: list[dict[str, Any]] = []
    naltrexone = ctx.active_meds("naltrexone")
    opioid_findings = [f for f in findings if f.rule == "ldn.opioid.active"]
    if naltrexone and opioid_findings:
        opioids = "; ".join(m.name for m in ctx.active_meds("opioid"))
        cards.append(
            make_card(
                summary=f"Naltrexone and an opioid are both active: {opioids}",
                indicator="critical",
                detail=finding_detail(
                    opioid_findings,
                    evidence.sources,
                    f"Active naltrexone: {'; '.join(m.name for m in naltrexone)}.",
                ),
                topic=("ldn-opioid-conflict", "Naltrexone with an opioid"),
                app_url=call.app_url,
                patient_id=patient.id,
            )
        )
    weeks_min, weeks_max = evidence.ldn.trial_weeks.min, evidence.ldn.trial_weeks.max
    references = "\n".join(reference_lines(evidence.ldn.citations, evidence.sources))
    for due in reviews_due(ctx, evidence):
        start = due.start.isoformat()
        cards.append(
            make_card(
                summary=f"LDN review due: {format_decimal(due.mg)} mg naltrexone since "
                f"{start} ({due.weeks} weeks)",
                indicator="info",
                detail=(
                    f"{due.medication.name} started on {start}, {due.weeks} weeks ago. "
                    f"ldncare plans the LDN review {weeks_min} to {weeks_max} weeks after the "
                    "target dose is reached (ldn.yaml `trial_weeks`; this order's dose counts "
                    "from its start): check the pain diary against the baseline "
                    f"and decide whether to continue.\n\n**References**\n\n{references}"
                ),
                topic=("ldn-review-due", "LDN review due"),
                app_url=call.app_url,
                patient_id=patient.id,
            )
        )
    # The plan's verdict is eligibility(screen(ctx)) on this same context: no full plan needed
    # (titration, care and ranked alternatives would be computed and thrown away).
    basis = consider_ldn(ctx, findings)
    if basis:
        cautious = any(f.severity == "warning" for f in basis)
        intro = (
            "Pudendal neuralgia is on the problem list and ldncare found no "
            "contraindication to low-dose naltrexone (off-label)."
            + (" Cautions:" if cautious else "")
        )
        cards.append(
            make_card(
                summary="Consider low-dose naltrexone (off-label) for pudendal neuralgia"
                + (" - with cautions" if cautious else ""),
                indicator="info",
                detail=finding_detail(list(basis), evidence.sources, intro),
                topic=("ldn-consider", "Consider LDN"),
                app_url=call.app_url,
                patient_id=patient.id,
            )
        )
    return cards


def _renal_card(
    call: HookCall, patient: Patient, draft: DraftMedication, decision: RenalDoseTooHigh
) -> dict[str, Any]:
    evidence = load_evidence()
    mono, strength, dose = decision.monograph, decision.strength, decision.unit_dose
    band, renal, daily = (
        decision.excess.band,
        decision.excess.renal,
        decision.excess.ordered_daily_mg,
    )
    refs = "\n".join(reference_lines(band.citations, evidence.sources))
    limit = f"{format_decimal(band.daily_max.mg_value)} mg/day, {band.frequency}"
    if dose is not None:
        suggestions = [_unit_dose_suggestion(draft, dose)]
        advice = (
            f"With {draft.med.name} the largest dose within the range is "
            f"{format_decimal(dose.per_dose_mg)} mg ({dose.units} × "
            f"{format_decimal(dose.strength_mg)} mg) {_TIMES[dose.doses_per_day]}, "
            f"{format_decimal(dose.daily_mg)} mg/day."
        )
    else:
        # No whole number of units of this product fits (or its strength is not in its name):
        # an order rewritten at the band's maximum could not be dispensed, so the limit is
        # stated in words and the only action offered is to remove the order.
        why = (
            f"one unit of {draft.med.name} ({format_decimal(strength.mg_value)} mg) "
            f"{band.frequency} does not fit the range"
            if strength is not None
            else f"the strength of {draft.med.name} is not stated in its name"
        )
        advice = (
            f"No dose of the ordered product is suggested: {why}. Prescribe at most {limit}, "
            "with a strength that gives it in whole units."
        )
        suggestions = _delete(f"Remove this order; prescribe at most {limit}", draft.reference)
    return make_card(
        summary=f"{mono.name} {format_decimal(daily)} mg/day is above the "
        f"{format_decimal(band.daily_max.mg_value)} mg/day maximum for {band.label}",
        indicator="warning",
        detail=(
            f"Estimated kidney function: {renal.rounded} mL/min ({renal.basis}). "
            f"For {band.label} the label range of {mono.name} is "
            f"{format_decimal(band.daily_min.mg_value)}–{format_decimal(band.daily_max.mg_value)} "
            f"mg/day, {band.frequency}; the order adds up to {format_decimal(daily)} mg/day. "
            f"{advice}\n\n**References**\n\n{refs}"
        ),
        topic=("renal-dose", "Dose for kidney function"),
        app_url=call.app_url,
        patient_id=patient.id,
        suggestions=suggestions,
    )


#: The order's words for the band's doses a day (a band's ``frequency`` may give a choice, "once
#: or twice a day"; the order gives the one its timing says).
_TIMES = {1: "once a day", 2: "twice a day", 3: "three times a day", 4: "four times a day"}


def _unit_dose_suggestion(draft: DraftMedication, dose: UnitDose) -> dict[str, Any]:
    """The draft rewritten at ``dose``: the same product, whole units, the band's doses a day."""
    per_dose = format_decimal(dose.per_dose_mg)
    frequency = _TIMES[dose.doses_per_day]
    label = f"Order {per_dose} mg {frequency} ({format_decimal(dose.daily_mg)} mg/day)"
    revised = dict(draft.resource)
    revised["dosageInstruction"] = [
        {
            "text": f"{per_dose} mg ({dose.units} × {format_decimal(dose.strength_mg)} mg) "
            f"{frequency}",
            "timing": {"repeat": {"frequency": dose.doses_per_day, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [
                {
                    "doseQuantity": {
                        "value": float(dose.per_dose_mg),
                        "unit": "mg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mg",
                    }
                }
            ],
        }
    ]
    return {
        "label": label,
        "isRecommended": True,
        "actions": [{"type": "update", "description": label, "resource": revised}],
    }


def ordered_daily_mg(resource: Mapping[str, Any]) -> Decimal | None:
    """Total mg a day of a MedicationRequest's first dosage, when it is stated in mass units:
    the FHIR dose and Timing read here, the arithmetic in :func:`ldncare.core.orders.daily_mg`."""
    dosages = resource.get("dosageInstruction")
    if not isinstance(dosages, list) or not dosages or not isinstance(dosages[0], Mapping):
        return None
    dosage = dosages[0]
    quantity: Any = None
    for dr in dosage.get("doseAndRate") or []:
        if isinstance(dr, Mapping) and isinstance(dr.get("doseQuantity"), Mapping):
            quantity = dr["doseQuantity"]
            break
    quantity = quantity or dosage.get("doseQuantity")
    timing = dosage.get("timing") or {}
    if not isinstance(timing, Mapping):
        return None
    repeat = timing.get("repeat") or {}
    if not isinstance(quantity, Mapping) or not isinstance(repeat, Mapping):
        return None
    try:
        dose = parse_dose(f"{quantity.get('value')} {quantity.get('code') or quantity.get('unit')}")
        given = repeat.get("frequencyMax") or repeat.get("frequency")
        if given or repeat.get("period"):
            period = repeat.get("period")
            order_timing = OrderTiming(
                frequency=Decimal(str(given)) if given else None,
                period=Decimal(str(period)) if period else None,
                period_unit=str(repeat.get("periodUnit") or repeat.get("unit") or "d"),
            )
        else:
            order_timing = OrderTiming(times_a_day=_times_a_day(timing, repeat))
        return daily_mg(dose, order_timing)
    except (LdncareError, ArithmeticError, KeyError, ValueError, TypeError):
        return None


#: Doses a day of the FHIR R4 timing abbreviations (value set timing-abbreviation, codes of
#: v3-GTSAbbreviation: https://hl7.org/fhir/R4/valueset-timing-abbreviation.html). WK and MO
#: are left out: "weekly" or "monthly" says nothing about a daily dose.
_TIMES_A_DAY = {
    "QD": Decimal(1),
    "AM": Decimal(1),
    "PM": Decimal(1),
    "BED": Decimal(1),
    "BID": Decimal(2),
    "TID": Decimal(3),
    "QID": Decimal(4),
    "QOD": Decimal("0.5"),
    "Q1H": Decimal(24),
    "Q2H": Decimal(12),
    "Q3H": Decimal(8),
    "Q4H": Decimal(6),
    "Q6H": Decimal(4),
    "Q8H": Decimal(3),
}


def _times_a_day(timing: Mapping[str, Any], repeat: Mapping[str, Any]) -> Decimal | None:
    """Doses a day when ``repeat.frequency`` is absent: from ``timing.code`` (BID, TID...),
    else one per ``repeat.timeOfDay`` or ``repeat.when`` event, else one. ``None`` when the
    timing has a code ldncare cannot count (then no dose is computed, and no card shown)."""
    concept = timing.get("code")
    if isinstance(concept, Mapping):
        codes = [c.get("code") for c in concept.get("coding") or [] if isinstance(c, Mapping)]
        known = [_TIMES_A_DAY[c] for c in codes if isinstance(c, str) and c in _TIMES_A_DAY]
        if known:
            return known[0]
        if codes or concept.get("text"):
            return None
    for events in (repeat.get("timeOfDay"), repeat.get("when")):
        if isinstance(events, list) and events:
            return Decimal(len(events))
    return Decimal(1)


def orders_to_check(
    hook: str,
    context: Mapping[str, Any],
    resources: Sequence[Mapping[str, Any]] = (),
    urls: Mapping[int, str] | None = None,
) -> DraftOrders | None:
    """The draft orders when an order hook checks any of them (:func:`order_cards` would read
    the patient), else None."""
    drafts = draft_orders(hook, context, resources, urls)
    return drafts if needs_check([d.order for d in drafts.checked]) else None


def _names(meds: Iterable[MedicationUse]) -> str:
    return "; ".join(m.name for m in meds)


def order_cards(call: HookCall) -> list[dict[str, Any]]:
    """The cards of an order hook: the decisions are the core's (:mod:`ldncare.core.orders`),
    this function puts them in words."""
    orders = call.drafts or draft_orders(call.hook, call.context, call.resources, call.full_urls)
    checked = orders.checked
    if not needs_check([d.order for d in checked]):
        return []  # before the patient is read: nothing to check, nothing to build
    evidence = load_evidence()
    patient = build_patient(call.patient_id, call.resources, call.full_urls)
    ctx = context_for(patient, call.as_of)
    vocab = load_vocabulary().medications
    ingredients = {
        id(d.order): vocab.ingredients(d.med) for d in checked if "gabapentinoid" in d.classes
    }
    decided = decide_orders(
        ctx,
        patient,
        [d.order for d in checked],
        [d.order for d in orders.all],
        evidence,
        ingredients,
        call.as_of,
    )
    cards: list[dict[str, Any]] = []
    for blocked in decided.naltrexone_blocked:
        stops, names = list(blocked.findings), _names(blocked.opioids)
        summary = (
            f"Naltrexone ordered while an opioid is active: {names}"
            if names
            else "Naltrexone ordered: " + stops[0].message
        )
        cards.append(
            make_card(
                summary=summary,
                indicator="critical",
                detail=finding_detail(
                    stops, evidence.sources, f"Ordered: {blocked.order.med.name}."
                ),
                topic=("ldn-opioid-conflict", "Naltrexone with an opioid"),
                app_url=call.app_url,
                patient_id=patient.id,
                suggestions=_delete("Remove the naltrexone order", blocked.order.reference),
            )
        )
    for conflict in decided.opioid_on_naltrexone:
        name = conflict.order.med.name
        taking = " ".join(
            [
                *(
                    [f"Active naltrexone: {_names(conflict.active_naltrexone)}."]
                    if conflict.active_naltrexone
                    else []
                ),
                *(
                    [f"Naltrexone ordered alongside: {_names(conflict.naltrexone_alongside)}."]
                    if conflict.naltrexone_alongside
                    else []
                ),
            ]
        )
        cards.append(
            make_card(
                summary=f"Opioid ordered ({name}) for a patient taking naltrexone"
                if conflict.active_naltrexone
                else f"Opioid ordered ({name}) together with a naltrexone order",
                indicator="critical",
                detail=finding_detail(
                    list(conflict.basis), evidence.sources, f"{taking} Ordered: {name}."
                ),
                topic=("ldn-opioid-conflict", "Naltrexone with an opioid"),
                app_url=call.app_url,
                patient_id=patient.id,
                suggestions=_delete("Remove the opioid order", conflict.order.reference),
            )
        )
    by_order = {id(d.order): d for d in checked}
    for renal in decided.renal:
        cards.append(_renal_card(call, patient, by_order[id(renal.order)], renal))
    return cards
