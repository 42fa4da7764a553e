"""Conformance: every kind of card the service can produce, from every hook, checked against the
CDS Hooks 2.0 rules -- written here from the specification text, independently of
``cards.validate_card`` (which the service's own property test uses), so one misreading cannot
hide in both.

The rules (CDS Hooks 2.0, https://cds-hooks.hl7.org/2.0/ -- "CDS Service Response", "Card
Attributes", "Source", "Suggestion", "Action", "Reasons for rejecting a card", "Link",
"Feedback"; read in the specification source, cds-hooks/docs ``docs/specification``):

- the response is an object with a ``cards`` array (REQUIRED);
- ``uuid``: OPTIONAL on a card, but it "SHALL be included in any subsequent calls to the CDS
  service's feedback endpoint" -- ldncare asks for feedback, so every card has one; we write
  RFC 4122 text; suggestion ``uuid`` likewise (AcceptedSuggestion.id is the suggestion uuid);
- ``summary``: REQUIRED, "One-sentence, <140-character";
- ``indicator``: REQUIRED, one of ``info``, ``warning``, ``critical``;
- ``detail``: OPTIONAL, GitHub-flavoured Markdown (a string);
- ``source``: REQUIRED, with ``label`` REQUIRED (a non-empty string, as every REQUIRED string);
  ``url`` and ``icon`` absolute URLs when present; ``topic`` a Coding;
- ``suggestions``: "If suggestions are present, selectionBehavior MUST also be provided",
  ``at-most-one`` or ``any``; each suggestion has a ``label`` (REQUIRED); "Multiple suggestions
  MAY be recommended, if card.selectionBehavior is any" (so at most one with at-most-one);
- an Action has ``type`` (create | update | delete) and ``description`` (REQUIRED); for create
  and update ``resource`` holds the (whole) FHIR resource; for delete ``resourceId`` is "A
  relative reference to the relevant resource" (``Type/id``);
- ``overrideReasons``: Codings; "the CDS Service MUST populate a display value for each";
- a Link has ``label``, ``url`` and ``type`` (REQUIRED); ``type`` is ``absolute`` or ``smart``;
  ``appContext`` "should only be valued if the link type is smart and is not valid for
  absolute links".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_cdshooks import (
    REAL,
    SERVICE_FOR_HOOK,
    TODAY,
    _load,
    condition,
    demo_client,  # noqa: F401  (the corpus fixture)
    egfr,
    fhir_patient,
    hook_request,
    make_client,
    med_request,
    on_ldn_and_oxycodone,
    post,
)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_RELATIVE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def _text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _absolute(value: Any) -> bool:
    return isinstance(value, str) and re.match(r"^https?://[^/\s]+", value) is not None


def _coding(value: Any) -> bool:
    return isinstance(value, dict) and _text(value.get("code"))


def spec_problems(card: dict[str, Any]) -> Iterable[str]:
    """What in ``card`` breaks a CDS Hooks 2.0 rule of the module docstring."""
    if not (isinstance(card.get("uuid"), str) and _UUID.match(card["uuid"])):
        yield "uuid: a card asking for feedback needs an RFC 4122 uuid"
    summary = card.get("summary")
    if not _text(summary) or len(summary) >= 140 or "\n" in summary:
        yield f"summary: one sentence under 140 characters, got {summary!r}"
    if card.get("indicator") not in ("info", "warning", "critical"):
        yield f"indicator: {card.get('indicator')!r}"
    if "detail" in card and not isinstance(card["detail"], str):
        yield "detail: Markdown text"
    source = card.get("source")
    if not isinstance(source, dict) or not _text(source.get("label")):
        yield "source.label: REQUIRED"
    else:
        for key in ("url", "icon"):
            if key in source and not _absolute(source[key]):
                yield f"source.{key}: an absolute URL"
        if "topic" in source and not _coding(source["topic"]):
            yield "source.topic: a Coding"
    suggestions = card.get("suggestions")
    if suggestions is not None:
        behavior = card.get("selectionBehavior")
        if behavior not in ("at-most-one", "any"):
            yield f"selectionBehavior: MUST be given with suggestions, got {behavior!r}"
        recommended = [s for s in suggestions if s.get("isRecommended") is True]
        if behavior == "at-most-one" and len(recommended) > 1:
            yield "suggestions: several recommended with at-most-one"
        for s in suggestions:
            if not _text(s.get("label")):
                yield "suggestion.label: REQUIRED"
            if not (isinstance(s.get("uuid"), str) and _UUID.match(s["uuid"])):
                yield "suggestion.uuid: feedback names accepted suggestions by it"
            for action in s.get("actions") or []:
                yield from _action_problems(action)
    for reason in card.get("overrideReasons") or []:
        if not (_coding(reason) and _text(reason.get("display")) and _text(reason.get("system"))):
            yield f"overrideReasons: a Coding with system, code and display, got {reason!r}"
    for link in card.get("links") or []:
        if not (_text(link.get("label")) and _absolute(link.get("url"))):
            yield f"link: label and absolute url REQUIRED, got {link!r}"
        if link.get("type") not in ("absolute", "smart"):
            yield f"link.type: {link.get('type')!r}"
        if "appContext" in link and link.get("type") != "smart":
            yield "link.appContext: only on smart links"


def _action_problems(action: dict[str, Any]) -> Iterable[str]:
    kind = action.get("type")
    if kind not in ("create", "update", "delete"):
        yield f"action.type: {kind!r}"
    if not _text(action.get("description")):
        yield "action.description: REQUIRED"
    if kind in ("create", "update"):
        resource = action.get("resource")
        if not (isinstance(resource, dict) and _text(resource.get("resourceType"))):
            yield f"action.resource: the whole FHIR resource for {kind}"
    if kind == "delete" and not _RELATIVE.match(str(action.get("resourceId"))):
        yield f"action.resourceId: a relative reference, got {action.get('resourceId')!r}"


def _kind(card: dict[str, Any]) -> str:
    """A card's kind: its topic, and the actions it suggests."""
    actions = sorted({a["type"] for s in card.get("suggestions", []) for a in s["actions"]})
    return "/".join([card["source"]["topic"]["code"], card["indicator"], *actions])


def _draft(text: str, rid: str, dose_mg: float | None = None, per_day: int = 1) -> dict[str, Any]:
    return med_request(text, rid=rid, status="draft", dose_mg=dose_mg, per_day=per_day)


# Vignettes: one request per card kind the service can give, on every hook that gives it.
OXY = "oxycodone hydrochloride 5 mg oral tablet"
PN = [fhir_patient(), condition("Pudendal neuralgia")]
VIGNETTES: dict[str, tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None]] = {
    "patient on LDN 10 weeks and oxycodone (opioid conflict, review due)": (
        "patient-view", on_ldn_and_oxycodone(), None),
    "pudendal neuralgia, nothing against LDN (consider LDN)": ("patient-view", PN, None),
    "pudendal neuralgia on levothyroxine (consider LDN with cautions)": (
        "patient-view", [*PN, med_request("levothyroxine 100 mcg tablet")], None),
    "naltrexone ordered for a patient on oxycodone (order-select)": (
        "order-select", [fhir_patient(), med_request(OXY)],
        [_draft("naltrexone 4.5 mg capsule", "n")]),
    "oxycodone ordered for a patient on LDN (order-sign)": (
        "order-sign", [fhir_patient(), med_request("naltrexone 4.5 mg capsule")],
        [_draft(OXY, "o")]),
    "oxycodone and naltrexone drafted together (medication-prescribe)": (
        "medication-prescribe", [fhir_patient()],
        [_draft(OXY, "o"), _draft("naltrexone 1.5 mg capsule", "n")]),
    "gabapentin 600 mg three times a day at eGFR 25 (dose the tablet gives)": (
        "order-sign", [fhir_patient(), egfr(25)],
        [_draft("gabapentin 600 MG Oral Tablet", "g", 600, 3)]),
    "gabapentin 800 mg tablets at eGFR 25 (no whole tablet fits: remove)": (
        "order-select", [fhir_patient(), egfr(25)],
        [_draft("gabapentin 800 MG Oral Tablet", "g", 800, 3)]),
    "pregabalin 300 mg twice a day at eGFR 20": (
        "order-sign", [fhir_patient(), egfr(20)],
        [_draft("pregabalin 300 MG Oral Capsule", "p", 300, 2)]),
}  # fmt: skip
#: Every kind of card ldncare can give: a new kind must get a vignette here.
KINDS = {
    "ldn-opioid-conflict/critical",
    "ldn-opioid-conflict/critical/delete",
    "ldn-review-due/info",
    "ldn-consider/info",
    "renal-dose/warning/update",
    "renal-dose/warning/delete",
}


def _answer(hook: str, resources: list[dict[str, Any]], drafts: Any) -> list[dict[str, Any]]:
    body = hook_request("order-select" if hook == "medication-prescribe" else hook,
                        resources=resources, drafts=drafts)  # fmt: skip
    if hook == "medication-prescribe":  # the pre-2.0 hook: drafts in context.medications
        body["hook"] = hook
        body["context"]["medications"] = body["context"].pop("draftOrders")
    response = post(make_client(), SERVICE_FOR_HOOK[hook], body)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


@pytest.mark.parametrize("vignette", VIGNETTES)
def test_each_vignette_card_follows_the_cds_hooks_2_0_rules(vignette: str) -> None:
    cards = _answer(*VIGNETTES[vignette])
    assert cards, "the vignette must produce the card it is named for"
    for card in cards:
        assert list(spec_problems(card)) == [], card


def test_the_vignettes_cover_every_kind_of_card_and_every_hook() -> None:
    kinds = {_kind(c) for v in VIGNETTES.values() for c in _answer(*v)}
    assert kinds == KINDS
    assert {v[0] for v in VIGNETTES.values()} == set(SERVICE_FOR_HOOK)
    # The consider-LDN card with cautions is its own wording of the same kind.
    cautious = next(k for k in VIGNETTES if "cautions" in k)
    summaries = {c["summary"] for c in _answer(*VIGNETTES[cautious])}
    assert any(s.endswith("with cautions") for s in summaries), summaries


def test_the_checker_refuses_what_the_specification_forbids() -> None:
    """The checker can fail: each rule, broken once, is caught."""
    (good,) = [c for c in _answer(*VIGNETTES["gabapentin 600 mg three times a day at eGFR 25 "
                                             "(dose the tablet gives)"])]  # fmt: skip
    assert list(spec_problems(good)) == []
    broken = [
        {**good, "uuid": "card-1"},
        {**good, "summary": "x" * 140},
        {**good, "indicator": "hard-stop"},
        {**good, "source": {"url": "https://ldncare.test"}},
        {k: v for k, v in good.items() if k != "selectionBehavior"},
        {**good, "overrideReasons": [{"system": "s", "code": "c"}]},
        {**good, "links": [{"label": "x", "url": "/relative", "type": "absolute"}]},
        {
            **good,
            "links": [
                {"label": "x", "url": "https://a.test", "type": "absolute", "appContext": "{}"}
            ],
        },
        {
            **good,
            "suggestions": [
                {
                    **good["suggestions"][0],
                    "actions": [{"type": "delete", "description": "x", "resourceId": "gaba"}],
                }
            ],
        },
        {
            **good,
            "suggestions": [
                {**good["suggestions"][0], "actions": [{"type": "update", "description": "x"}]}
            ],
        },
    ]
    for card in broken:
        assert list(spec_problems(card)), card


#: The corpus requests that parse (the malformed ones are answered 400, checked in test_cdshooks).
READABLE = [p for p in REAL if _load(p)[0] is not None]


def test_most_of_the_real_corpus_is_readable_json() -> None:
    assert len(READABLE) >= len(REAL) - 6 and len(READABLE) > 50


@pytest.mark.parametrize("path", READABLE, ids=lambda p: p.name)
def test_every_card_answered_to_the_real_request_corpus_follows_the_rules(
    path: Any,
    demo_client: TestClient,  # noqa: F811
) -> None:
    body, _ = _load(path)
    assert body is not None
    response = demo_client.post(f"/cds-services/{SERVICE_FOR_HOOK[body['hook']]}", json=body)
    if response.status_code != 200:
        return  # 400 and 412 are checked for their reason in test_cdshooks
    assert isinstance(response.json().get("cards"), list)
    for card in response.json()["cards"]:
        assert list(spec_problems(card)) == [], card


def test_the_real_corpus_with_ldn_added_gets_conforming_opioid_cards(
    demo_client: TestClient,  # noqa: F811
) -> None:
    """The corpus patients rarely take naltrexone: each readable order request of the corpus,
    with a naltrexone order drafted beside its own orders, gets cards that conform."""
    checked = 0
    for path in REAL:
        body, _ = _load(path)
        if body is None or body["hook"] not in ("order-sign", "order-select"):
            continue
        drafts = body["context"].get("draftOrders")
        if not isinstance(drafts, dict) or not isinstance(drafts.get("entry"), list):
            continue
        ldn = _draft("naltrexone 4.5 mg capsule", "ldn-added")
        ldn["subject"] = {"reference": f"Patient/{body['context'].get('patientId', 'p1')}"}
        drafts["entry"].append({"resource": ldn})
        if body["hook"] == "order-select":
            body["context"]["selections"] = ["MedicationRequest/ldn-added"]
        response = demo_client.post(f"/cds-services/{SERVICE_FOR_HOOK[body['hook']]}", json=body)
        if response.status_code != 200:
            continue
        checked += 1
        for card in response.json()["cards"]:
            assert list(spec_problems(card)) == [], card
    assert checked >= 10, checked


def test_review_due_vignette_is_ten_weeks_after_the_start() -> None:
    """The review-due card of the first vignette is the one the trial length says (ldn.yaml)."""
    cards = _answer(*VIGNETTES["patient on LDN 10 weeks and oxycodone (opioid conflict, "
                               "review due)"])  # fmt: skip
    review = next(c for c in cards if c["source"]["topic"]["code"] == "ldn-review-due")
    start = (TODAY - timedelta(weeks=10)).isoformat()
    assert start in review["summary"]
