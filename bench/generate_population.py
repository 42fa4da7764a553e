"""Write N synthetic patients as a FHIR Bulk Data export (one NDJSON file per resource type).

The mix is meant to look like a pain clinic's catchment, not like real prevalence data: some
patients on opioids (RxNorm codes and names from the CDC value sets vendored in
``evidence/data/vocabulary/opioid_rxnorm.json``), some on LDN (naltrexone, RxNorm ingredient
7243 as in ``ldn.yaml``), tricyclics mostly in older people, gabapentinoids, CKD with low eGFR,
pudendal neuralgia, pregnancy, and Observations ldncare does not read (blood pressure, pain
scores) so that filtering them costs what it costs. Non-opioid medicines carry names only, no
codes (no code is invented). The output is deterministic for a given N and seed.

Run: ``.venv/bin/python bench/generate_population.py OUT_DIR -n 10000 [--seed 1] [--gzip]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import IO, Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
TODAY = date(2026, 6, 1)

# SNOMED CT codes already used by the vocabulary (conditions.yaml, checked there).
CONDITIONS = {
    "chronic_pain": ("82423001", "Chronic pain"),
    "diabetic_neuropathy": ("368581000119106", "Neuropathy due to type 2 diabetes mellitus"),
    "ckd3": ("433144002", "Chronic kidney disease stage 3"),
    "hypertension": ("38341003", "Hypertension"),
    "pregnancy": ("72892002", "Normal pregnancy"),
    "depression": ("370143000", "Major depression disorder"),
}
# Names only (no code invented); the vocabulary recognises them by name.
OTHER_MEDS = [
    "Amitriptyline Hydrochloride 10 MG Oral Tablet",
    "Nortriptyline 25 MG Oral Capsule",
    "Gabapentin 300 MG Oral Capsule",
    "Pregabalin 75 MG Oral Capsule",
    "Duloxetine 30 MG Delayed Release Oral Capsule",
    "Lisinopril 10 MG Oral Tablet",
    "Metformin hydrochloride 500 MG Oral Tablet",
    "Atorvastatin 20 MG Oral Tablet",
    "Levothyroxine Sodium 0.05 MG Oral Tablet",
]
GIVEN = ["Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lea"]
FAMILY = ["Smith", "Okafor", "Nguyen", "Garcia", "Muller", "Rossi", "Kowalski", "Haddad"]


def opioid_codes() -> list[tuple[str, str]]:
    root = resources.files("ldncare.evidence") / "data" / "vocabulary" / "opioid_rxnorm.json"
    sets = json.loads(root.read_text(encoding="utf-8"))["value_sets"]
    codes = sets["opioid_analgesics"]["concepts"]["rxnorm"]
    # Leave out the buprenorphine/naloxone combinations: they also count as antagonists.
    return sorted((c, d) for c, d in codes.items() if "Naloxone" not in d)


def _ref(pid: str) -> dict[str, str]:
    return {"reference": f"Patient/{pid}"}


def _day(rng: random.Random, back_days: int) -> str:
    return (TODAY - timedelta(days=rng.randrange(back_days))).isoformat()


class Writer:
    def __init__(self, out: Path, compress: bool) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.compress = compress
        self.files: dict[str, IO[str]] = {}

    def write(self, resource: dict[str, Any]) -> None:
        rtype = resource["resourceType"]
        fh = self.files.get(rtype)
        if fh is None:
            name = f"{rtype}.ndjson" + (".gz" if self.compress else "")
            path = self.out / name
            if self.compress:
                fh = gzip.open(path, "wt", encoding="utf-8", compresslevel=1)  # noqa: SIM115
            else:
                fh = path.open("w", encoding="utf-8", buffering=1 << 20)
            self.files[rtype] = fh
        fh.write(json.dumps(resource, separators=(",", ":")))
        fh.write("\n")

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()


def _med(rng: random.Random, pid: str, n: int, name: str, code: tuple[str, str] | None,
         status: str, dose: str | None) -> dict[str, Any]:  # fmt: skip
    concept: dict[str, Any] = {"text": name}
    if code is not None:
        concept["coding"] = [{"system": RXNORM, "code": code[0], "display": code[1]}]
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": f"{pid}-m{n}",
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": _ref(pid),
        "authoredOn": _day(rng, 400),
    }
    if dose:
        res["dosageInstruction"] = [{"text": dose}]
    return res


def _obs(pid: str, n: int, code: str, display: str, value: float, unit: str,
         when: str) -> dict[str, Any]:  # fmt: skip
    return {
        "resourceType": "Observation",
        "id": f"{pid}-o{n}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": _ref(pid),
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org"},
    }


def patient_resources(i: int, seed: int, opioids: list[tuple[str, str]]) -> list[dict[str, Any]]:
    rng = random.Random(seed * 1_000_003 + i)
    pid = f"pop-{i:07d}"
    female = rng.random() < 0.55
    age = rng.choice([rng.randint(18, 64), rng.randint(18, 64), rng.randint(65, 95)])
    birth = date(TODAY.year - age, rng.randint(1, 12), rng.randint(1, 28))
    out: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": pid,
            "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]}],
            "gender": "female" if female else "male",
            "birthDate": birth.isoformat(),
        }
    ]
    conds: list[str] = []
    if rng.random() < 0.30:
        conds.append("chronic_pain")
    if rng.random() < 0.10:
        conds.append("diabetic_neuropathy")
    ckd = rng.random() < (0.15 if age >= 65 else 0.04)
    if ckd:
        conds.append("ckd3")
    if rng.random() < 0.25:
        conds.append("hypertension")
    if rng.random() < 0.08:
        conds.append("depression")
    if female and 18 <= age <= 45 and rng.random() < 0.06:
        conds.append("pregnancy")
    for n, key in enumerate(conds):
        code, display = CONDITIONS[key]
        out.append(
            {
                "resourceType": "Condition",
                "id": f"{pid}-c{n}",
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "code": {"coding": [{"system": SNOMED, "code": code, "display": display}],
                         "text": display},
                "subject": _ref(pid),
                "onsetDateTime": _day(rng, 3000),
            }
        )  # fmt: skip
    if rng.random() < 0.05:
        out.append(
            {
                "resourceType": "Condition",
                "id": f"{pid}-cpn",
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "code": {"text": "Pudendal neuralgia"},
                "subject": _ref(pid),
                "onsetDateTime": _day(rng, 2000),
            }
        )
    n = 0
    if rng.random() < 0.12:
        opioid = rng.choice(opioids)
        status = rng.choice(["active", "active", "stopped"])
        out.append(_med(rng, pid, n, opioid[1], opioid, status, None))
        n += 1
    if rng.random() < 0.06:
        dose = rng.choice(["1.5 mg at bedtime", "3 mg at bedtime", "4.5 mg at bedtime"])
        out.append(_med(rng, pid, n, "Naltrexone (compounded, low dose)", ("7243", "naltrexone"),
                        "active", dose))  # fmt: skip
        n += 1
    tca_p = 0.10 if age >= 65 else 0.04
    for name in OTHER_MEDS:
        p = tca_p if "triptyline" in name else 0.06
        if "Gabapentin" in name or "Pregabalin" in name:
            p = 0.08
        if rng.random() < p:
            out.append(_med(rng, pid, n, name, None, rng.choice(["active", "active", "stopped"]),
                            None))  # fmt: skip
            n += 1
    k = 0
    if ckd or rng.random() < 0.4:
        egfr = rng.uniform(20, 59) if ckd else rng.uniform(55, 110)
        out.append(_obs(pid, k, "33914-3", "eGFR", round(egfr, 1), "mL/min/{1.73_m2}",
                        _day(rng, 365)))  # fmt: skip
        k += 1
    if rng.random() < 0.5:
        out.append(_obs(pid, k, "29463-7", "Body Weight", round(rng.uniform(45, 120), 1), "kg",
                        _day(rng, 365)))  # fmt: skip
        k += 1
    # Observations ldncare does not read (pain score, blood pressure): dropped on import.
    for _ in range(rng.randint(1, 4)):
        out.append(_obs(pid, k, "72514-3", "Pain severity", rng.randint(0, 10), "{score}",
                        _day(rng, 365)))  # fmt: skip
        k += 1
    return out


def generate(out: Path, n: int, *, seed: int = 1, compress: bool = False) -> int:
    """Write ``n`` patients into ``out``; returns the bytes written."""
    opioids = opioid_codes()
    writer = Writer(out, compress)
    try:
        for i in range(n):
            for res in patient_resources(i, seed, opioids):
                writer.write(res)
    finally:
        writer.close()
    return sum(p.stat().st_size for p in out.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gzip", action="store_true", help="write .ndjson.gz files")
    args = parser.parse_args()
    size = generate(args.out, args.n, seed=args.seed, compress=args.gzip)
    print(f"wrote {args.n} patients, {size / 1e6:.1f} MB, to {args.out}")


if __name__ == "__main__":
    main()
