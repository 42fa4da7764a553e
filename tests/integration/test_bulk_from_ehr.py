"""``ldncare import --fhir-server URL [--group ID]`` against the test EHR: a FHIR Bulk Data
export (202 -> polling with Retry-After -> 429 -> manifest -> files, an error file),
authenticated by SMART Backend Services (a JWT client assertion, RS384 or ES384), imported and
screened as a file import is; a failed file is reported by name, the others kept, and a second
run resumes without a new export."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ldncare.cli import EXIT_FAILED, EXIT_PARTIAL, app
from ldncare.store.db import open_engine
from ldncare.store.models import PatientRow
from tests.integration.test_cdshooks import med_request
from tests.shared_data import SYNTHEA
from tests.support.smart_ehr import BULK_CLIENT_ID, BULK_GROUP, SmartEhr, load_patients

DIRK = "948e608d-e408-4788-8cf2-8157c49c2940"
FILES = [
    SYNTHEA / "Dirk_Kuhlman_1e503533-b8c2-42cb-a6d5-bbd7d70d07ad.json",
    SYNTHEA / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json",
]


def pn_patient_on_ldn_and_oxycodone(folder: Path) -> Path:
    """A woman with pudendal neuralgia on LDN who was also prescribed oxycodone: the
    population screening must flag her (a Bundle file the test EHR serves)."""

    def med(rid: str, text: str) -> dict[str, Any]:
        return med_request(text, rid=rid, pid="pn-1", authored=date(2026, 2, 1))

    resources = [
        {"resourceType": "Patient", "id": "pn-1", "birthDate": "1980-03-14", "gender": "female"},
        {
            "resourceType": "Condition",
            "id": "pn-1-c",
            "subject": {"reference": "Patient/pn-1"},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"text": "Pudendal neuralgia"},
        },
        med("pn-1-ldn", "naltrexone 4.5 mg capsule (compounded)"),
        med("pn-1-oxy", "oxycodone hydrochloride 5 mg oral tablet"),
    ]
    path = folder / "pn-1.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                "entry": [{"resource": r} for r in resources]}))  # fmt: skip
    return path


def _keys(algorithm: str) -> tuple[bytes, str]:
    """A private key (PEM) for ldncare and the public key (PEM) the EHR holds."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "RS384":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


@pytest.fixture(params=["RS384", "ES384"])
def ehr(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SmartEhr]:
    private, public = _keys(request.param)
    key_file = tmp_path / "ldncare-bulk.pem"
    key_file.write_bytes(private)
    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("LDNCARE_BULK_CLIENT_ID", BULK_CLIENT_ID)
    monkeypatch.setenv("LDNCARE_BULK_PRIVATE_KEY_FILE", str(key_file))
    monkeypatch.setenv("LDNCARE_BULK_ALGORITHM", request.param)
    records = load_patients([*FILES, pn_patient_on_ldn_and_oxycodone(tmp_path)])
    with SmartEhr(records, bulk_public_key=public) as running:
        yield running


def _import(ehr: SmartEhr, tmp_path: Path, *extra: str) -> tuple[int, dict[str, object], str]:
    args = ["import", "--json", "--fhir-server", ehr.fhir_base, "--group", BULK_GROUP]
    args += ["--download-dir", str(tmp_path / "export"), *extra]
    result = CliRunner().invoke(app, args)
    report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    return result.exit_code, report, result.stderr


def _stored(tmp_path: Path) -> list[str]:
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with Session(engine) as s:
        return sorted(s.scalars(select(PatientRow.external_id)))


def test_a_group_export_is_polled_with_retry_after_and_imported(
    ehr: SmartEhr, tmp_path: Path
) -> None:
    code, report, stderr = _import(ehr, tmp_path)
    assert code == 0, stderr
    assert report["patients"]["imported"] == 3  # type: ignore[index]
    assert DIRK in _stored(tmp_path)
    assert [status for _, status in ehr.bulk_polls] == [202, 429, 200]
    # Each Retry-After (1 s) was waited before asking again.
    times = [t for t, _ in ehr.bulk_polls]
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(times))
    assert "MedicationStatement could not be exported" in stderr  # the manifest's error file


def test_the_imported_export_is_screened_like_a_file_import(ehr: SmartEhr, tmp_path: Path) -> None:
    assert _import(ehr, tmp_path)[0] == 0
    result = CliRunner().invoke(app, ["screen", "--format", "json", "--as-of", "2026-03-02"])
    assert result.exit_code == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    assert {hit["patient_id"] for hit in hits} == {"pn-1"}
    # The same worklist the store gives for these patients after any import (no new rules).
    direct = tmp_path / "direct"
    direct.mkdir()
    for rtype in ("Patient", "Condition", "MedicationRequest", "Observation"):
        (direct / f"{rtype}_1.ndjson").write_text(ehr.ndjson(rtype))
    compared = CliRunner().invoke(
        app, ["screen", "--ndjson", str(direct), "--format", "json", "--as-of", "2026-03-02"]
    )
    assert compared.exit_code == 0, compared.stderr
    assert hits == json.loads(compared.stdout)["hits"]


def test_a_failed_file_is_named_the_others_imported_and_a_rerun_resumes(
    ehr: SmartEhr, tmp_path: Path
) -> None:
    ehr.bulk_failing = {"Observation_1.ndjson"}  # the EHR's name; ldncare's is Observation_4
    code, report, stderr = _import(ehr, tmp_path)
    assert code == EXIT_PARTIAL
    assert "Observation_4.ndjson could not be downloaded (HTTP 500 from" in stderr
    assert "/bulk/files/Observation_1.ndjson" in stderr
    assert any(e.get("where") == "Observation_4.ndjson" for e in report["errors"])  # type: ignore[union-attr]
    assert DIRK in _stored(tmp_path)  # the files that came were imported
    # The EHR is fixed; the same command resumes: no new kick-off, only the missing file.
    ehr.bulk_failing = set()
    kickoffs, downloads = ehr.bulk_kickoffs, len(ehr.bulk_downloads)
    code, report, stderr = _import(ehr, tmp_path)
    assert code == 0, stderr
    assert ehr.bulk_kickoffs == kickoffs
    fetched = ehr.bulk_downloads[downloads:]
    assert [f for f in fetched if f != "errors.ndjson"] == ["Observation_1.ndjson"]


def test_an_unknown_group_is_refused_with_the_ehrs_reason(ehr: SmartEhr, tmp_path: Path) -> None:
    args = ["import", "--fhir-server", ehr.fhir_base, "--group", "no-such-group"]
    result = CliRunner().invoke(app, [*args, "--download-dir", str(tmp_path / "x")])
    assert result.exit_code == EXIT_FAILED
    assert "HTTP 404" in result.stderr and "no such Group" in result.stderr


def test_a_key_the_ehr_does_not_hold_is_refused_at_the_token_endpoint(
    ehr: SmartEhr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other, _ = _keys("RS384")
    wrong = tmp_path / "other.pem"
    wrong.write_bytes(other)
    monkeypatch.setenv("LDNCARE_BULK_PRIVATE_KEY_FILE", str(wrong))
    monkeypatch.setenv("LDNCARE_BULK_ALGORITHM", "RS384")
    code, _, stderr = _import(ehr, tmp_path)
    assert code == EXIT_FAILED
    assert "token endpoint refused" in stderr
    assert ehr.bulk_kickoffs == 0


def test_without_backend_credentials_the_command_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.delenv("LDNCARE_BULK_CLIENT_ID", raising=False)
    result = CliRunner().invoke(app, ["import", "--fhir-server", "https://ehr.example/fhir"])
    assert result.exit_code == 2
    assert "LDNCARE_BULK_CLIENT_ID" in result.stderr


def test_progress_is_shown_while_the_ehr_prepares_and_sends_the_export(
    ehr: SmartEhr, tmp_path: Path
) -> None:
    args = ["import", "--fhir-server", ehr.fhir_base, "--group", BULK_GROUP]
    result = CliRunner().invoke(app, [*args, "--download-dir", str(tmp_path / "export")])
    assert result.exit_code == 0, result.stderr
    assert "export in progress: 50% done; asking again in 1 s" in result.stderr
    assert "export busy (429); asking again in 1 s" in result.stderr
    assert "downloading Observation_4.ndjson (4 of 4)" in result.stderr
