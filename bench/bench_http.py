"""HTTP benchmarks with wrk on loopback: CDS Hooks against /healthz of the same app, and pages.

The server is ``ldncare serve`` (one uvicorn worker, no access log) pinned to core 0; wrk runs
pinned to core 1, so the client never competes with the server (a Python client would saturate
first). Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from common import Result, at_least, at_most, info

ROOT = Path(__file__).resolve().parents[1]
LDNCARE = Path(sys.executable).with_name("ldncare")
PASSWORD = "bench-password-123"
TODAY = date.today()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and os.cpu_count() else []


# --- data -------------------------------------------------------------------------------------


def seed(db_url: str, patients: int, diary_days: int) -> None:
    """``patients`` stored patients with plans in clinic c1, one with ``diary_days`` of diary."""
    from argon2 import PasswordHasher

    from ldncare.core.diary import parse_entry
    from ldncare.patient_file import patient_from_data
    from ldncare.store import repository
    from ldncare.store.db import open_engine
    from ldncare.web import auth
    from ldncare.web.auth import create_user
    from ldncare.web.service import plan_contract

    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    engine = open_engine(db_url)
    start = TODAY - timedelta(days=diary_days)
    for i in range(patients):
        data: dict[str, Any] = {
            "id": f"bench-{i:05d}",
            "name": f"Bench Patient {i}",
            "birth_date": f"{1940 + i % 60}-03-14",
            "sex": "female" if i % 2 else "male",
            "conditions": [{"name": "Pudendal neuralgia"}],
            "medications": [{"name": "Paracetamol", "dose": "1 g"}]
            + ([{"name": "Tramadol 50 MG Oral Tablet"}] if i % 10 == 0 else []),
            "labs": [
                {
                    "test": "egfr",
                    "value": 40 + i % 60,
                    "unit": "mL/min/1.73m2",
                    "date": TODAY.isoformat(),
                }
            ],
        }
        patient = patient_from_data(data)
        contract = plan_contract(patient, start=start, today=start, nantes=None)
        repository.add_patient(
            engine, patient, plan_contract=contract, clinic_id="c1", actor="bench"
        )
    rows = []
    for d in range(diary_days):
        day = start + timedelta(days=d)
        rows.append(
            parse_entry(
                {
                    "day": day.isoformat(),
                    "pain_avg": 3 + d % 5,
                    "pain_worst": 8 + d % 3,
                    "sitting_minutes": 30 + d % 60,
                    "dose_taken": True,
                },
                today=TODAY,
            )
        )
    for entry in rows:
        repository.add_or_update_diary_entry(
            engine, "bench-00001", entry, today=TODAY, actor="bench"
        )
    create_user(
        engine, "bench.clinician", PASSWORD, role="clinician", clinic_id="c1", actor="bench"
    )
    engine.dispose()


def cds_request(hook: str, *, ordered: str = "naltrexone") -> dict[str, Any]:
    """A realistic order-select/patient-view call: full prefetch, active opioid, LDN ordered.

    ``ordered="amoxicillin"`` orders something ldncare has no check for instead (the same
    request size): what most order-select calls of an EHR are.
    """
    pid = "bench-cds"
    ref = {"reference": f"Patient/{pid}"}
    conditions = [
        {
            "resourceType": "Condition",
            "id": f"c{i}",
            "subject": ref,
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"text": name},
        }
        for i, name in enumerate(
            [
                "Pudendal neuralgia",
                "Essential hypertension",
                "Prediabetes",
                "Chronic pain",
                "Anemia",
                "Obesity",
                "Osteoarthritis of knee",
                "Hyperlipidemia",
                "Sinusitis",
                "Migraine",
                "Low back pain",
                "Insomnia",
            ]
        )
    ]
    meds = [
        {
            "resourceType": "MedicationRequest",
            "id": f"m{i}",
            "status": "active",
            "intent": "order",
            "subject": ref,
            "authoredOn": "2026-01-01",
            "medicationCodeableConcept": {"text": name},
        }
        for i, name in enumerate(
            [
                "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet",
                "Lisinopril 10 MG Oral Tablet",
                "Metformin 500 MG",
                "Atorvastatin 20 MG",
                "Sertraline 50 MG Oral Tablet",
                "Ibuprofen 400 MG",
            ]
        )
    ]
    labs = [
        {
            "resourceType": "Observation",
            "id": f"o{i}",
            "status": "final",
            "subject": ref,
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "effectiveDateTime": f"2026-{1 + i % 9:02d}-01",
            "valueQuantity": {"value": value, "unit": unit},
        }
        for i, (code, value, unit) in enumerate(
            [
                ("33914-3", 72, "mL/min/1.73m2"),
                ("2160-0", 1.0, "mg/dL"),
                ("1742-6", 25, "U/L"),
                ("1920-8", 22, "U/L"),
            ]
            * 8
        )
    ]

    def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in resources],
        }

    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": pid},
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": pid,
                "gender": "female",
                "birthDate": "1975-05-05",
            },
            "conditions": searchset(conditions),
            "medications": searchset(meds),
            "labs": searchset(labs),
            # Every template answered, as an EHR honouring discovery does (null: nothing found);
            # a template left out would be fetched, and without a fhirServer answered 412.
            "statements": None,
            "allergies": None,
            "weight": None,
        },
    }
    if hook == "order-select" and ordered == "amoxicillin":
        body["context"]["selections"] = ["MedicationRequest/amox-draft"]
        body["context"]["draftOrders"] = searchset(
            [
                {
                    "resourceType": "MedicationRequest",
                    "id": "amox-draft",
                    "status": "draft",
                    "intent": "order",
                    "subject": ref,
                    "medicationCodeableConcept": {"text": "amoxicillin 500 mg oral capsule"},
                }
            ]
        )
    elif hook == "order-select":
        order = {
            "resourceType": "MedicationRequest",
            "id": "ldn-draft",
            "status": "draft",
            "intent": "order",
            "subject": ref,
            "medicationCodeableConcept": {
                "coding": [
                    {
                        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                        "code": "7243",
                        "display": "naltrexone",
                    }
                ],
                "text": "naltrexone 1.5 mg",
            },
        }
        body["context"]["selections"] = ["MedicationRequest/ldn-draft"]
        body["context"]["draftOrders"] = searchset([order])
    return body


# --- server and wrk ---------------------------------------------------------------------------


#: The process id of each running :func:`server`, by base URL (for its CPU time).
SERVER_PIDS: dict[str, int] = {}


def server_cpu_seconds(base: str) -> float:
    """CPU seconds (user + system) the server at ``base`` has used so far: its process and
    any worker processes it started (Linux /proc)."""
    root = SERVER_PIDS[base]
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            stats[int(entry.name)] = text[text.rindex(")") + 2 :].split()
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, f in stats.items() if int(f[1]) in tree} - tree
        tree |= more
        grew = bool(more)
    ticks = sum(int(stats[pid][11]) + int(stats[pid][12]) for pid in tree if pid in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(
    db_url: str,
    loop: str = "asyncio",
    workers: int = 1,
    *,
    src: Path | None = None,
    start_timeout: float = 60,
) -> Iterator[str]:
    """``ldncare serve --demo``: one worker pinned to core 0, or ``workers`` on every core.

    ``src`` runs another tree's code (its ``src`` folder) instead of the installed one.
    """
    port = free_port()
    env = dict(os.environ, LDNCARE_DATABASE_URL=db_url)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    host = ["--host", "127.0.0.1", "--port", str(port), "--loop", loop]
    pin = _pin(0) if workers == 1 else []
    proc = subprocess.Popen(
        [*pin, str(LDNCARE), "serve", "--demo", "--workers", str(workers), *host],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    SERVER_PIDS[base] = proc.pid
    try:
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not start")
        if workers > 1:
            time.sleep(5)  # /healthz answers once one worker is up; let the others start too
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str, *, seconds: int, connections: int, script: str = "", pin: bool = True
) -> dict[str, float]:
    """Run wrk (on core 1 unless ``pin`` is off) and return requests/s, p50/p99 latency (ms)
    and error counts."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [*(_pin(1) if pin else []), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
        args.append("--latency")
        if script:
            path = Path(tmp) / "script.lua"
            path.write_text(script)
            args += ["-s", str(path)]
        out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = re.search(r"(\d+) requests in", out)

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert m, out
        return float(m.group(1)) * _UNIT[m.group(2)]

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(x) for x in sock.groups()) if sock else 0
    )
    # p95 when the script's done() hook prints it (bench_cds_floor._P95); wrk prints no p95.
    p95 = re.search(r"^P95_US (\d+)$", out, re.MULTILINE)
    return {
        "rps": rps,
        "p50": pct("50"),
        "p95": int(p95.group(1)) / 1000 if p95 else float("nan"),
        "p99": pct("99"),
        "errors": errors,
        "requests": int(done.group(1)) if done else 0,
    }


def _post_script(body: dict[str, Any]) -> str:
    payload = json.dumps(json.dumps(body))  # a Lua string literal is a JSON string literal
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {payload}\n"
    )


def _cookie_script(cookie: str) -> str:
    return f'wrk.headers["Cookie"] = {json.dumps(cookie)}\n'


# --- benchmarks -------------------------------------------------------------------------------


def bench_http(quick: bool) -> list[Result]:
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed: scripts/ci-system-deps.sh installs it")
    seconds = 5 if quick else 20
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        seed(db_url, patients=5, diary_days=5)
        with server(db_url) as base:
            healthz = wrk(f"{base}/healthz", seconds=seconds, connections=50)
            select_body = cds_request("order-select")
            check = httpx.post(f"{base}/cds-services/ldncare-order-select", json=select_body)
            cards = check.json().get("cards", [])
            assert check.status_code == 200 and any(c["indicator"] == "critical" for c in cards), (
                check.text
            )
            select = wrk(
                f"{base}/cds-services/ldncare-order-select",
                seconds=seconds,
                connections=50,
                script=_post_script(select_body),
            )
            # The floor: the same call for an order ldncare has no check for (no card, the
            # patient is not read). What is left is HTTP, the JSON and the draft order.
            amox = cds_request("order-select", ordered="amoxicillin")
            none = httpx.post(f"{base}/cds-services/ldncare-order-select", json=amox)
            assert none.status_code == 200 and none.json() == {"cards": []}, none.text
            unchecked = wrk(
                f"{base}/cds-services/ldncare-order-select",
                seconds=seconds,
                connections=50,
                script=_post_script(amox),
            )
            view_script = _post_script(cds_request("patient-view"))
            view = wrk(
                f"{base}/cds-services/ldncare-patient-view",
                seconds=seconds,
                connections=50,
                script=view_script,
            )
        # Both cores serving: `ldncare serve --workers 2`, nothing pinned, so wrk shares the
        # cores with the workers (a production server would not host its load generator).
        with server(db_url, workers=2) as base:
            two = {
                name: wrk(f"{base}{path}", seconds=seconds, connections=50, script=s, pin=False)
                for name, path, s in (
                    ("healthz", "/healthz", ""),
                    (
                        "order-select",
                        "/cds-services/ldncare-order-select",
                        _post_script(select_body),
                    ),
                    ("patient-view", "/cds-services/ldncare-patient-view", view_script),
                )
            }
        # The same patient-view run on uvloop, the loop `ldncare serve` no longer uses by
        # default: its p99 shows why (new connections admitted late, bench/README.md).
        with server(db_url, loop="uvloop") as base:
            uv_healthz = wrk(f"{base}/healthz", seconds=seconds, connections=50)
            uv_view = wrk(
                f"{base}/cds-services/ldncare-patient-view",
                seconds=seconds,
                connections=50,
                script=view_script,
            )
    size = len(json.dumps(select_body))
    ratio = select["rps"] / healthz["rps"]
    return [
        info("http", "GET /healthz throughput (50 conn)", healthz["rps"], "req/s"),
        info(
            "http",
            "CDS order-select throughput (50 conn)",
            select["rps"],
            "req/s",
            f"request {size / 1024:.0f} KiB, opioid + naltrexone → critical card",
        ),
        at_least("http", "order-select / healthz throughput", ratio * 100, "%", 50),
        at_most("http", "order-select p99 latency", select["p99"], "ms", 20),
        at_most("http", "order-select errors", select["errors"], "", 0),
        info(
            "http",
            "order-select of an unchecked order (amoxicillin): throughput",
            unchecked["rps"],
            "req/s",
            f"{unchecked['rps'] / healthz['rps'] * 100:.1f} % of /healthz, p99 "
            f"{unchecked['p99']:.1f} ms: HTTP, JSON and the draft order, no patient read",
        ),
        info("http", "CDS patient-view throughput (50 conn)", view["rps"], "req/s"),
        info("http", "patient-view / healthz throughput", view["rps"] / healthz["rps"] * 100, "%"),
        at_most("http", "patient-view p99 latency", view["p99"], "ms", 20),
        at_most("http", "patient-view errors", view["errors"], "", 0),
        info(
            "http", "2 workers, both cores: GET /healthz throughput", two["healthz"]["rps"], "req/s"
        ),
        info("http", "2 workers: order-select throughput", two["order-select"]["rps"], "req/s"),
        at_least(
            "http",
            "2 workers: order-select / healthz throughput",
            two["order-select"]["rps"] / two["healthz"]["rps"] * 100,
            "%",
            50,
        ),
        at_most(
            "http", "2 workers: order-select p99 latency", two["order-select"]["p99"], "ms", 20
        ),
        info("http", "2 workers: patient-view throughput", two["patient-view"]["rps"], "req/s"),
        at_most(
            "http", "2 workers: patient-view p99 latency", two["patient-view"]["p99"], "ms", 20
        ),
        at_most("http", "2 workers: errors", sum(r["errors"] for r in two.values()), "", 0),
        info("http", "uvloop (comparison): GET /healthz throughput", uv_healthz["rps"], "req/s"),
        info("http", "uvloop (comparison): patient-view throughput", uv_view["rps"], "req/s"),
        info("http", "uvloop (comparison): patient-view p99 latency", uv_view["p99"], "ms"),
    ]


def bench_pages(quick: bool) -> list[Result]:
    seconds = 5 if quick else 15
    patients = 200 if quick else 1000
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        t0 = time.perf_counter()
        seed(db_url, patients=patients, diary_days=365)
        seeded = time.perf_counter() - t0
        with server(db_url) as base:
            client = httpx.Client(base_url=base)
            login = client.post(
                "/api/session", json={"username": "bench.clinician", "password": PASSWORD}
            )
            assert login.status_code == 200, login.text
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            listing = client.get("/api/patients").json()
            items = listing if isinstance(listing, list) else listing.get("patients", listing)
            target = next(p["id"] for p in items if str(p.get("external_id", "")) == "bench-00001")
            assert client.get("/").status_code == 200
            assert client.get(f"/patients/{target}").status_code == 200
            # One connection: the latency wrk sees is the server's time per page.
            dash = wrk(f"{base}/", seconds=seconds, connections=1, script=_cookie_script(cookie))
            page = wrk(
                f"{base}/patients/{target}",
                seconds=seconds,
                connections=1,
                script=_cookie_script(cookie),
            )
    return [
        info("pages", f"seeding {patients} patients + 365 diary days", seeded, "s"),
        at_most("pages", f"dashboard, {patients} patients, p99", dash["p99"], "ms", 100),
        info("pages", "dashboard p50", dash["p50"], "ms"),
        at_most("pages", "patient page, 365 diary days, p99", page["p99"], "ms", 100),
        info("pages", "patient page p50", page["p50"], "ms"),
        at_most("pages", "page errors", dash["errors"] + page["errors"], "", 0),
    ]
