"""Same answers as another tree (issue #18, speed work): every CDS Hooks request fixture of the
repository, and variants of each that make the service decide, answered by this source tree
and by a baseline tree (``git archive`` of the commit before), compared as JSON.

Each tree answers in its own process (``serve_call`` in process, demo mode, a mock FHIR
server that knows the Patient asked for and nothing else). Card and suggestion ``uuid``s are
random per call and are replaced by their position before comparing; everything else (status,
cards, every word, link and suggestion, 400/412 error bodies) must be equal.

Requests: every ``*.json`` under ``tests/fixtures/cds-hooks`` with a ``hook`` and a
``context`` (the spec, IG, Inferno, opioid-CDS and PDDI examples); for each order-select /
order-sign one, the same with a naltrexone draft added (and selected), and with an oxycodone
draft added on a patient taking naltrexone; for each one, the same with a low eGFR and a
gabapentin 600 mg three-times-a-day draft. Plus the bench's own bodies (13 KiB and 53 KiB
order-select checked and floor, patient-view, order-sign).

    PYTHONPATH=src python bench/cds_same_answers.py --baseline-src /tmp/base/src
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIXTURES = ROOT / "tests" / "fixtures" / "cds-hooks"
sys.path.insert(0, str(HERE))

SERVICE_FOR_HOOK = {
    "patient-view": "ldncare-patient-view",
    "order-select": "ldncare-order-select",
    "medication-prescribe": "ldncare-order-select",
    "order-sign": "ldncare-order-sign",
}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
#: The FHIR servers the fixtures name (loopback is allowed in demo mode by default).
SERVERS = ["http://fhir.example.com", "http://fhir.example.org:9080",
           "http://hooks.smarthealthit.org:9080"]  # fmt: skip


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    for candidate in (text, text.rstrip().removesuffix("}")):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    return None


def _draft(
    rid: str, pid: str | None, code: str | None, display: str, **more: Any
) -> dict[str, Any]:
    """A draft order; ``code`` (RxNorm) only where the repository's own bench uses one."""
    concept: dict[str, Any] = {"text": display}
    if code:
        concept["coding"] = [{"system": RXNORM, "code": code, "display": display}]
    draft: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": concept,
    }
    if pid:
        draft["subject"] = {"reference": f"Patient/{pid}"}
    return {**draft, **more}


def _with_draft(body: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    ctx = out["context"]
    bundle = ctx.get("draftOrders")
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        bundle = ctx["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": []}
        ctx.pop("medications", None)
    bundle.setdefault("entry", []).append({"resource": draft})
    if out["hook"] == "order-select":
        sel = ctx.get("selections")
        ctx["selections"] = [*(sel if isinstance(sel, list) else []),
                             f"MedicationRequest/{draft['id']}"]  # fmt: skip
    return out


def _with_prefetch(
    body: dict[str, Any], key: str, resources: list[dict[str, Any]]
) -> dict[str, Any]:
    out = copy.deepcopy(body)
    prefetch = out.get("prefetch")
    if not isinstance(prefetch, dict):
        prefetch = out["prefetch"] = {}
    prefetch[key] = {"resourceType": "Bundle", "type": "searchset",
                     "entry": [{"resource": r} for r in resources]}  # fmt: skip
    return out


def _pid(body: dict[str, Any]) -> str | None:
    pid = body.get("context", {}).get("patientId")
    return pid.removeprefix("Patient/") if isinstance(pid, str) else None


def requests() -> Iterator[tuple[str, str, Any]]:
    """(name, service, body) of every request compared."""
    for path in sorted(FIXTURES.rglob("*.json")):
        body = _load(path)
        if not (isinstance(body, dict) and body.get("hook") in SERVICE_FOR_HOOK
                and isinstance(body.get("context"), dict)):  # fmt: skip
            continue
        name = str(path.relative_to(FIXTURES))
        service = SERVICE_FOR_HOOK[body["hook"]]
        yield name, service, body
        pid = _pid(body)
        ref = {"reference": f"Patient/{pid}"} if pid else None
        if body["hook"] in ("order-select", "order-sign", "medication-prescribe"):
            ldn = _draft("same-ldn", pid, "7243", "naltrexone 1.5 mg")
            yield f"{name} + naltrexone draft", service, _with_draft(body, ldn)
            on_ldn = _with_prefetch(body, "statements", [
                {"resourceType": "MedicationStatement", "id": "same-ldn-taken", "status": "active",
                 "subject": ref, "effectiveDateTime": "2026-01-01",
                 "medicationCodeableConcept": {"text": "naltrexone 4.5 mg"}}])  # fmt: skip
            oxy = _draft("same-oxy", pid, "1049621", "oxycodone hydrochloride 5 MG Oral Tablet")
            yield f"{name} + oxycodone on naltrexone", service, _with_draft(on_ldn, oxy)
            renal = _with_prefetch(body, "labs", [
                {"resourceType": "Observation", "id": "same-egfr", "status": "final",
                 "subject": ref, "effectiveDateTime": "2026-06-01",
                 "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3"}]},
                 "valueQuantity": {"value": 25, "unit": "mL/min/1.73m2"}}])  # fmt: skip
            gaba = _draft("same-gaba", pid, None, "gabapentin 600 MG Oral Tablet",
                          dosageInstruction=[{"timing": {"repeat": {"frequency": 3, "period": 1,
                          "periodUnit": "d"}}, "doseAndRate": [{"doseQuantity": {
                          "value": 600, "unit": "mg"}}]}])  # fmt: skip
            yield f"{name} + gabapentin, low eGFR", service, _with_draft(renal, gaba)
    from bench_cds_cpu import requests as bench_requests

    for name, (service, body) in bench_requests().items():
        yield f"bench {name}", service, body


def _transport() -> Any:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if "/Patient/" in path:
            pid = path.rsplit("/", 1)[-1]
            return httpx.Response(
                200,
                json={
                    "resourceType": "Patient",
                    "id": pid,
                    "birthDate": "1975-04-02",
                    "gender": "female",
                },
            )
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset",
                                         "entry": []})  # fmt: skip

    return httpx.MockTransport(handler)


def _normalise(payload: Any) -> Any:
    """Random uuids replaced by their position; everything else kept."""
    text = json.dumps(payload, sort_keys=True)
    found: dict[str, str] = {}

    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: (found.setdefault(v, f"uuid-{len(found)}") if k == "uuid"
                        and isinstance(v, str) else walk(v)) for k, v in x.items()}  # fmt: skip
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    return walk(json.loads(text))


def answers() -> dict[str, Any]:
    import logging

    from ldncare.cdshooks.service import build_router
    from ldncare.cdshooks.settings import CdsSettings

    logging.disable(logging.CRITICAL)
    settings = CdsSettings(demo=True, demo_fhir_servers=["loopback", *SERVERS])
    serve_call = build_router(settings, transport=_transport()).serve_call  # type: ignore[attr-defined]
    loop = asyncio.new_event_loop()
    out: dict[str, Any] = {}
    for name, service, body in requests():
        raw = json.dumps(body).encode()
        url = f"http://127.0.0.1/cds-services/{service}"
        status, payload = loop.run_until_complete(
            serve_call(service, raw, None, url, "application/json")
        )
        out[name] = [status, _normalise(payload)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-src", type=Path, required=False)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(answers()))
        return 0
    if args.baseline_src is None:
        parser.error("--baseline-src is required")
    got = {}
    for tree, path in (("before", str(args.baseline_src.resolve())),
                       ("after", os.environ.get("PYTHONPATH", ""))):  # fmt: skip
        env = dict(os.environ, PYTHONPATH=path)
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child"],
                              env=env, check=True, capture_output=True, text=True)  # fmt: skip
        got[tree] = json.loads(done.stdout.strip().splitlines()[-1])
    before, after = got["before"], got["after"]
    assert before.keys() == after.keys()
    differ = [n for n in before if before[n] != after[n]]
    statuses: dict[int, int] = {}
    cards = 0
    for status, payload in after.values():
        statuses[status] = statuses.get(status, 0) + 1
        cards += len(payload.get("cards", [])) if status == 200 else 0
    print(f"{len(after)} requests, statuses {dict(sorted(statuses.items()))}, {cards} cards")
    for name in differ:
        print(f"DIFFERS: {name}\n  before: {json.dumps(before[name])[:600]}\n"
              f"  after:  {json.dumps(after[name])[:600]}")  # fmt: skip
    print("same answers" if not differ else f"{len(differ)} answers differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
