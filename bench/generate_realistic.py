"""Write N patients as a *realistic* FHIR Bulk Data export: Synthea-sized records plus the mix.

``generate_population.py`` writes ~1.7 KB per patient, which flatters an importer. A real export
is mostly resources ldncare never reads. Here each patient is one of the Synthea patients in
``tests/fixtures/synthea`` (chosen by a seeded draw) written as Bulk NDJSON with new ids: every
resource type of the bundle goes to its own file (``Observation.ndjson`` with vital signs,
survey scores and labs of many LOINC codes, ``Encounter``, ``Claim``, ``ExplanationOfBenefit``,
``Procedure``, ``Immunization``, ``DiagnosticReport``, ...), so per-patient counts and sizes are
Synthea's own. On top of that each patient gets the resources of ``generate_population``'s mix
(opioids, CKD with low eGFR, LDN, tricyclics, gabapentinoids, pregnancy), with that mix's
gender and birth date written into the Synthea Patient, so the clinical mix is the one the
other benchmark measures.

References are rewritten the Bulk way (``urn:uuid:X`` -> ``Patient/X``, ``Encounter/X``, ...);
every id of a copy gets the copy's suffix (``-0000042``), so ids never repeat. The output is
deterministic for a given N and seed. Each template is serialised once; a copy is a string
replace, so writing goes at disk speed.

With ``--last-updated INSTANT`` every resource carries ``meta.lastUpdated`` (for the incremental
import, ``ldncare import --since``); with ``--changed-at INSTANT2 --changed-every K`` as well,
every K-th patient is a newer version (family name changed) whose resources are stamped
INSTANT2: the same export taken again after 1/K of the patients changed.

Run: ``.venv/bin/python bench/generate_realistic.py OUT_DIR -n 1000 [--seed 1]
[--last-updated 2026-10-01T00:00:00Z [--changed-at 2026-11-15T00:00:00Z --changed-every 100]]``
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
SYNTHEA = HERE.parent / "tests" / "fixtures" / "synthea"
#: Marks where a copy's suffix goes in a template (never in Synthea text).
_MARK = "\x00"
#: Marks where a copy's meta.lastUpdated goes (with ``--last-updated``).
_STAMP = "\x01"
_GENDER = re.compile(r'"gender":"[a-z]+"')
_BIRTH = re.compile(r'"birthDate":"[0-9-]+"')

sys.path.insert(0, str(HERE))
from generate_population import opioid_codes, patient_resources  # noqa: E402


def _bulk_reference(value: Any, kinds: dict[str, str]) -> Any:
    """``value`` with every ``urn:uuid:X`` reference of the bundle turned into ``Type/X``."""
    if isinstance(value, dict):
        return {k: _bulk_reference(v, kinds) for k, v in value.items()}
    if isinstance(value, list):
        return [_bulk_reference(v, kinds) for v in value]
    if isinstance(value, str) and value.startswith("urn:uuid:"):
        uid = value[9:]
        if uid in kinds:
            return f"{kinds[uid]}/{uid}"
    return value


class Template:
    """One Synthea patient as NDJSON text per resource type, ids marked for the copy suffix."""

    def __init__(self, path: Path, *, stamped: bool = False) -> None:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        entries = [e["resource"] for e in bundle["entry"]]
        if stamped:
            for res in entries:
                res["meta"] = {**res.get("meta", {}), "lastUpdated": _STAMP}
        kinds = {r["id"]: r["resourceType"] for r in entries if "id" in r}
        by_type: dict[str, list[str]] = {}
        self.patient = ""
        for res in entries:
            res = _bulk_reference(res, kinds)
            line = json.dumps(res, separators=(",", ":"), ensure_ascii=False)
            line = line.replace("\\u0001", _STAMP)
            if res["resourceType"] == "Patient":
                self.patient = line
            else:
                by_type.setdefault(res["resourceType"], []).append(line)
        ids = sorted(kinds, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(i) for i in ids))

        def mark(text: str) -> str:
            return pattern.sub(lambda m: m.group(0) + _MARK, text)

        self.patient = mark(self.patient)
        self.texts = {t: mark("\n".join(lines) + "\n") for t, lines in by_type.items()}
        self.patient_id = next(r["id"] for r in entries if r["resourceType"] == "Patient")


def templates(*, stamped: bool = False) -> list[Template]:
    out = []
    for path in sorted(SYNTHEA.glob("*.json")):
        head = json.loads(path.read_text(encoding="utf-8"))
        entries = head.get("entry", []) if isinstance(head, dict) else []
        if any(e.get("resource", {}).get("resourceType") == "Patient" for e in entries):
            out.append(Template(path, stamped=stamped))
    return out


class Files:
    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.files: dict[str, IO[str]] = {}

    def write(self, rtype: str, text: str) -> None:
        fh = self.files.get(rtype)
        if fh is None:
            path = self.out / f"{rtype}.ndjson"
            fh = self.files[rtype] = path.open("w", encoding="utf-8", buffering=1 << 20)
        fh.write(text)

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()


def generate(
    out: Path, n: int, *, seed: int = 1, last_updated: str | None = None,
    changed_at: str | None = None, changed_every: int = 0,
) -> int:  # fmt: skip
    """Write ``n`` patients into ``out``; returns the bytes written."""
    opioids = opioid_codes()
    temps = templates(stamped=last_updated is not None)
    rng = random.Random(seed)
    files = Files(out)
    try:
        for i in range(n):
            t = temps[rng.randrange(len(temps))]
            suffix = f"-{i:07d}"
            pid = t.patient_id + suffix
            mix = patient_resources(i, seed, opioids)
            person = mix[0]
            changed = bool(changed_at and changed_every and i % changed_every == 0)
            stamp = changed_at if changed else last_updated
            patient = t.patient.replace(_MARK, suffix)
            patient = _GENDER.sub(f'"gender":"{person["gender"]}"', patient, count=1)
            patient = _BIRTH.sub(f'"birthDate":"{person["birthDate"]}"', patient, count=1)
            if changed:  # a newer version of this patient: the family name was corrected
                patient = patient.replace('"family":"', '"family":"Changed', 1)
            if stamp is not None:
                patient = patient.replace(_STAMP, stamp)
            files.write("Patient", patient + "\n")
            for rtype, text in t.texts.items():
                text = text.replace(_MARK, suffix)
                files.write(rtype, text if stamp is None else text.replace(_STAMP, stamp))
            for res in mix[1:]:
                # The mix's resources, given to this patient (ids keep the mix's own form).
                res["id"] = f"{res['id']}{suffix}"
                res["subject"] = {"reference": f"Patient/{pid}"}
                if stamp is not None:
                    res["meta"] = {"lastUpdated": stamp}
                line = json.dumps(res, separators=(",", ":"))
                files.write(res["resourceType"], line + "\n")
    finally:
        files.close()
    return sum(p.stat().st_size for p in out.iterdir())


def used_bytes(out: Path) -> int:
    """Bytes of the files the importer reads (the other types are never opened)."""
    from ldncare.fhir.ndjson import export_files

    used, _ = export_files(out)
    return sum(p.stat().st_size for p in used)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--last-updated", default=None, help="meta.lastUpdated of every resource")
    parser.add_argument("--changed-at", default=None, help="... of the changed patients")
    parser.add_argument("--changed-every", type=int, default=0, help="every K-th patient changed")
    args = parser.parse_args()
    size = generate(args.out, args.n, seed=args.seed, last_updated=args.last_updated,
                    changed_at=args.changed_at, changed_every=args.changed_every)  # fmt: skip
    used = used_bytes(args.out)
    print(
        f"wrote {args.n} patients, {size / 1e6:.1f} MB ({used / 1e6:.1f} MB of the types "
        f"ldncare reads), to {args.out}"
    )


if __name__ == "__main__":
    main()
