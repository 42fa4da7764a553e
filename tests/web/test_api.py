"""The JSON API, route by route, with good and bad input and the access rules."""

from __future__ import annotations

from datetime import timedelta

from ldncare.store import repository
from tests.web.conftest import PASSWORD, TODAY, World, patient_file


def _detail(r) -> list[dict]:  # type: ignore[no-untyped-def]
    body = r.json()
    assert isinstance(body["detail"], list) and body["detail"], body
    assert all("loc" in d and "msg" in d for d in body["detail"])
    return body["detail"]


# --- session and login ---------------------------------------------------------------------------


def test_session_without_login_gives_a_csrf_token_and_no_user(world: World) -> None:
    r = world.client.get("/api/session")
    assert r.status_code == 200
    assert r.json()["username"] is None
    assert len(r.json()["csrf_token"]) > 20
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_wrong_password_is_401_with_a_field(world: World) -> None:
    r = world.client.post("/api/session", json={"username": "clin1", "password": "nope-nope"})
    assert r.status_code == 401
    assert _detail(r)[0]["loc"] == ["body", "password"]


def test_login_rate_limit_refuses_even_the_right_password(world: World) -> None:
    for _ in range(3):
        r = world.client.post("/api/session", json={"username": "clin1", "password": "bad-pass"})
        assert r.status_code == 401
    r = world.client.post("/api/session", json={"username": "clin1", "password": PASSWORD})
    assert r.status_code == 429
    assert "too many" in _detail(r)[0]["msg"]
    assert int(r.headers["Retry-After"]) > 0
    # Another username from the same client is not blocked.
    assert (
        world.client.post(
            "/api/session", json={"username": "clin2", "password": PASSWORD}
        ).status_code
        == 200
    )


def test_login_body_bounds(world: World) -> None:
    r = world.client.post("/api/session", json={"username": "x" * 65, "password": "p"})
    assert r.status_code == 422
    assert _detail(r)[0]["loc"][-1] == "username"


def test_logout_needs_csrf_and_ends_the_session(world: World) -> None:
    world.login("clin1")
    token = world.client.headers.pop("X-CSRF-Token")
    assert world.client.delete("/api/session").status_code == 403
    r = world.client.delete("/api/session", headers={"X-CSRF-Token": token})
    assert r.status_code == 204
    world.client.cookies.clear()
    assert world.client.get("/api/patients").status_code == 401


def test_not_logged_in_is_401(world: World) -> None:
    r = world.client.get("/api/patients")
    assert r.status_code == 401
    assert _detail(r)[0]["msg"] == "log in first"


# --- patients ------------------------------------------------------------------------------------


def test_clinician_lists_own_clinic_only_with_status(world: World) -> None:
    world.login("clin1")
    r = world.client.get("/api/patients")
    assert r.status_code == 200
    ids = {p["external_id"] for p in r.json()}
    assert ids == {"anna", "bert"}
    assert all(p["status"]["stage"] == "titrating" for p in r.json())


def test_admin_lists_every_clinic(world: World) -> None:
    world.login("root")
    assert {p["external_id"] for p in world.client.get("/api/patients").json()} == {
        "anna",
        "bert",
        "carl",
    }


def test_clinician_of_clinic_2_cannot_see_clinic_1(world: World) -> None:
    world.login("clin2")
    assert world.client.get(f"/api/patients/{world.anna}").status_code == 404
    assert world.client.get("/api/patients/anna/diary").status_code == 404
    assert world.client.get(f"/api/patients/{world.carl}").status_code == 200


def test_create_patient_needs_csrf(world: World) -> None:
    world.login("clin1")
    body = {"patient": patient_file("dora")}
    r = world.client.post("/api/patients", json=body, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    assert _detail(r)[0]["loc"] == ["header", "X-CSRF-Token"]


def test_create_patient_gives_plan_v1_in_own_clinic(world: World) -> None:
    world.login("clin1")
    r = world.client.post(
        "/api/patients", json={"patient": patient_file("dora"), "start": "2026-03-02"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["clinic_id"] == "clinic-1"
    plan = world.client.get(f"/api/patients/{r.json()['id']}/plans/latest").json()
    assert plan["version"] == 1
    assert plan["contract"]["ldn"]["schedule"][0]["start_date"] == "2026-03-02"


def test_a_number_that_is_one_patients_id_and_anothers_external_id_is_refused(
    world: World,
) -> None:
    """A record number "2" next to database id 2: never a guess that writes to the wrong one."""
    world.login("clin1")
    number = str(world.bert)
    r = world.client.post("/api/patients", json={"patient": patient_file(number)})
    assert r.status_code == 201, r.text
    entry = {"day": "2026-03-01", "pain_avg": 4}
    r = world.client.post(f"/api/patients/{number}/diary", json=entry)
    assert r.status_code == 422
    detail = _detail(r)[0]
    assert "ambiguous" in detail["msg"] and f"ext:{number}" in detail["msg"]
    assert detail["loc"] == ["path", "patient_id"]
    assert repository.list_diary(world.engine, world.bert, actor="test") == []

    # Either one can still be named explicitly.
    def external_id(ref: str) -> str:
        return str(world.client.get(f"/api/patients/{ref}").json()["patient"]["external_id"])

    assert external_id(f"id:{number}") == "bert"
    assert external_id(f"ext:{number}") == number
    # Pages link by database id, which stays unambiguous there; a CDS card's link by external id.
    page = world.client.get(f"/patients/{world.bert}")
    assert page.status_code == 200 and "Patient bert" in page.text
    link = world.client.get(f"/patients/by-external/{number}", follow_redirects=False)
    assert link.status_code == 303 and link.headers["location"] != f"/patients/{world.bert}"


def test_a_number_ambiguous_only_through_another_clinic_is_not(world: World) -> None:
    """carl (clinic 2) has database id N; clinic 1 has a record number "N": clinic 1 gets
    its own patient, and learns nothing about carl."""
    world.login("clin1")
    number = str(world.carl)
    assert world.client.post("/api/patients", json={"patient": patient_file(number)}).is_success
    r = world.client.get(f"/api/patients/{number}")
    assert r.status_code == 200 and r.json()["patient"]["external_id"] == number


def test_create_patient_in_another_clinic_is_refused(world: World) -> None:
    world.login("clin1")
    r = world.client.post(
        "/api/patients", json={"patient": patient_file("dora"), "clinic": "clinic-2"}
    )
    assert r.status_code == 422
    assert _detail(r)[0]["loc"] == ["body", "clinic"]


def test_duplicate_patient_is_422(world: World) -> None:
    world.login("clin1")
    r = world.client.post("/api/patients", json={"patient": patient_file("anna")})
    assert r.status_code == 422
    assert "cannot be used for a new patient" in _detail(r)[0]["msg"]


def test_bad_patient_input_names_the_field(world: World) -> None:
    world.login("clin1")
    bad_lab = patient_file("dora", labs=[{"test": "egfr", "value": -3, "unit": "mL/min"}])
    r = world.client.post("/api/patients", json={"patient": bad_lab})
    assert r.status_code == 422
    assert _detail(r)[0]["loc"][:4] == ["body", "patient", "labs", 0]
    r = world.client.post("/api/patients", json={"patient": patient_file("bad id!")})
    assert r.status_code == 422
    r = world.client.post("/api/patients", json={"patient": patient_file("dora", shoe=42)})
    assert r.status_code == 422
    r = world.client.post(
        "/api/patients", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    r = world.client.post("/api/patients", json={"patient": patient_file("x", weight_kg=1e308)})
    assert r.status_code == 422


def test_patient_cannot_create_patients(world: World) -> None:
    world.login("anna")
    r = world.client.post("/api/patients", json={"patient": patient_file("dora")})
    assert r.status_code == 403


def test_get_patient_gives_status_plan_and_tonight(world: World) -> None:
    world.login("clin1")
    r = world.client.get(f"/api/patients/{world.anna}")
    assert r.status_code == 200
    body = r.json()
    assert body["plan"]["version"] == 1
    assert body["tonight"]["dose_mg"] == 3.5  # step 3 from 2026-03-01 on
    assert body["patient"]["status"]["stage"] == "titrating"


def test_unknown_patient_is_404_and_bad_id_is_422(world: World) -> None:
    world.login("clin1")
    missing = world.client.get("/api/patients/99999")
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["loc"] == ["path"]  # the URL names it, not the body
    assert world.client.get("/api/patients/bad%20id").status_code == 422


# --- patient access ------------------------------------------------------------------------------


def test_patient_a_cannot_read_patient_b(world: World) -> None:
    world.login("anna")
    assert world.client.get(f"/api/patients/{world.anna}").status_code == 200
    for path in ("", "/diary", "/plans", "/handout.pdf", "/calendar.ics", "/response"):
        r = world.client.get(f"/api/patients/{world.bert}{path}")
        assert r.status_code == 404, path
    r = world.client.post(
        f"/api/patients/{world.bert}/diary", json={"day": "2026-03-01", "pain_avg": 5}
    )
    assert r.status_code == 404


def test_patient_lists_only_self(world: World) -> None:
    world.login("anna")
    assert [p["external_id"] for p in world.client.get("/api/patients").json()] == ["anna"]


def test_refused_access_is_audited(world: World) -> None:
    world.login("anna")
    world.client.get(f"/api/patients/{world.bert}")
    rows = repository.audit_entries(world.engine)
    assert any(
        r.who == "web:anna" and r.action == "denied" and r.entity_id == str(world.bert)
        for r in rows
    )


# --- assessments and plans -----------------------------------------------------------------------


def test_assessment_with_tramadol_gives_a_not_recommended_version(world: World) -> None:
    world.login("clin1")
    data = patient_file("anna", medications=[{"name": "Tramadol", "dose": "50 mg"}])
    nantes = {"pudendal_territory": True, "worse_sitting": True}
    r = world.client.post(
        f"/api/patients/{world.anna}/assessments", json={"patient": data, "nantes": nantes}
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    contract = r.json()["contract"]
    assert contract["ldn"]["eligibility"] == "not_recommended"
    assert contract["nantes"]["status"] == "incomplete"
    status = world.client.get(f"/api/patients/{world.anna}").json()["patient"]["status"]
    assert status["stage"] == "safety_alert"
    assert "opioid on record" in status["flags"]


def test_assessment_for_another_id_is_refused(world: World) -> None:
    world.login("clin1")
    r = world.client.post(
        f"/api/patients/{world.anna}/assessments", json={"patient": patient_file("bert")}
    )
    assert r.status_code == 422
    assert _detail(r)[0]["loc"] == ["body", "id"]


def test_unknown_nantes_item_is_422(world: World) -> None:
    world.login("clin1")
    r = world.client.post(
        f"/api/patients/{world.anna}/assessments",
        json={"patient": patient_file("anna"), "nantes": {"made_up": True}},
    )
    assert r.status_code == 422
    assert _detail(r)[0]["loc"] == ["body", "nantes"]


def test_adjust_plan_is_a_new_version_with_its_reason(world: World) -> None:
    world.login("clin1")
    r = world.client.post(
        f"/api/patients/{world.anna}/plans",
        json={"reason": "vivid dreams: slower steps", "slow": True},
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2 and r.json()["reason"] == "vivid dreams: slower steps"
    plans = world.client.get(f"/api/patients/{world.anna}/plans").json()
    assert [p["version"] for p in plans] == [1, 2]
    first, second = plans[0]["contract"]["ldn"], plans[1]["contract"]["ldn"]
    assert first["schedule"][0]["start_date"] == second["schedule"][0]["start_date"]
    assert second["schedule"][0]["end_date"] > first["schedule"][0]["end_date"]


def test_adjust_plan_bad_input(world: World) -> None:
    world.login("clin1")
    url = f"/api/patients/{world.anna}/plans"
    assert world.client.post(url, json={"reason": ""}).status_code == 422
    assert world.client.post(url, json={"reason": "x", "step_days": 0}).status_code == 422
    r = world.client.post(url, json={"reason": "x", "target_dose": "4.5 g"})
    assert r.status_code == 422
    r = world.client.post(url, json={"reason": "x", "review_weeks": 1})
    assert r.status_code == 422
    assert _detail(r)[0]["loc"] == ["body", "review_weeks"]


def test_latest_plan_404_when_none(world: World) -> None:
    world.login("clin1")
    assert world.client.get("/api/patients/99999/plans/latest").status_code == 404


# --- diary ---------------------------------------------------------------------------------------


def test_patient_records_a_diary_day_and_reads_it_back(world: World) -> None:
    world.login("anna")
    url = f"/api/patients/{world.anna}/diary"
    body = {
        "day": "2026-03-01",
        "pain_avg": 5,
        "pain_worst": 7,
        "sitting_minutes": 40,
        "side_effects": [{"effect": "vivid_dreams", "severity": "mild"}],
        "dose_taken": True,
        "dose": "3.5 mg",
    }
    r = world.client.post(url, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"day": "2026-03-01", "created": True, "flags": []}
    r = world.client.post(url, json={**body, "dose": "3 mg"})
    assert r.json()["created"] is False
    assert "differs from the scheduled" in r.json()["flags"][0]
    days = world.client.get(url).json()
    assert len(days) == 1 and days[0]["dose_mg"] == 3.0
    assert days[0]["side_effects"][0]["effect"] == "vivid_dreams"


def test_diary_bad_input(world: World) -> None:
    world.login("anna")
    url = f"/api/patients/{world.anna}/diary"
    future = (TODAY + timedelta(days=1)).isoformat()
    r = world.client.post(url, json={"day": future, "pain_avg": 3})
    assert r.status_code == 422
    assert _detail(r)[0]["loc"] == ["body", "day"]
    r = world.client.post(url, json={"day": "2026-03-01", "pain_avg": 11})
    assert r.status_code == 422
    assert _detail(r)[0]["loc"] == ["body", "pain_avg"]
    r = world.client.post(url, json={"day": "2026-03-01", "pain_avg": 6, "pain_worst": 2})
    assert r.status_code == 422
    r = world.client.post(url, json={"day": "2026-03-01", "dose": "2.5"})
    assert r.status_code == 422
    r = world.client.post(
        url, json={"day": "2026-03-01", "side_effects": [{"effect": "itch", "severity": "mild"}]}
    )
    assert r.status_code == 422


def test_diary_csv_export_and_import_round_trip(world: World) -> None:
    world.login("clin1")
    base = f"/api/patients/{world.anna}/diary"
    world.client.post(base, json={"day": "2026-02-27", "pain_avg": 6, "sitting_minutes": 30})
    csv_text = world.client.get(f"/api/patients/{world.anna}/diary.csv").text
    assert csv_text.splitlines()[0].startswith("day")
    r = world.client.post(
        f"/api/patients/{world.bert}/diary/import",
        content=csv_text.encode(),
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert [w["day"] for w in r.json()] == ["2026-02-27"]


def test_diary_import_refuses_bad_csv_and_writes_nothing(world: World) -> None:
    world.login("clin1")
    bad = "day,pain_avg\n2026-02-27,5\n2026-02-28,12\n"
    r = world.client.post(
        f"/api/patients/{world.bert}/diary/import",
        content=bad.encode(),
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 422
    assert world.client.get(f"/api/patients/{world.bert}/diary").json() == []
    r = world.client.post(
        f"/api/patients/{world.bert}/diary/import",
        content=b"\xff\xfe",
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 422


def test_response_judgement_route(world: World) -> None:
    world.login("clin1")
    r = world.client.get(f"/api/patients/{world.anna}/response")
    assert r.status_code == 200
    assert r.json()["response"]["status"] == "too_early"
    assert r.json()["status"]["stage"] == "titrating"


# --- handout and calendar ------------------------------------------------------------------------


def test_handout_is_a_pdf(world: World) -> None:
    world.login("anna")
    r = world.client.get(f"/api/patients/{world.anna}/handout.pdf")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")


def test_calendar_has_one_event_per_step_and_the_review(world: World) -> None:
    world.login("anna")
    r = world.client.get(f"/api/patients/{world.anna}/calendar.ics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/calendar")
    text = r.text
    steps = world.client.get(f"/api/patients/{world.anna}/plans/latest").json()["contract"]
    n = len(steps["ldn"]["schedule"])
    assert text.count("BEGIN:VEVENT") == n + 1
    assert "LDN review" in text
    assert "DTSTART;VALUE=DATE:20260201" in text


# --- review notes --------------------------------------------------------------------------------


def test_review_notes(world: World) -> None:
    world.login("clin1")
    url = f"/api/patients/{world.anna}/review-notes"
    r = world.client.post(url, json={"text": "Tolerating well; continue."})
    assert r.status_code == 201
    assert r.json()["created_by"] == "web:clin1"
    assert [n["text"] for n in world.client.get(url).json()] == ["Tolerating well; continue."]
    assert world.client.post(url, json={"text": ""}).status_code == 422
    assert world.client.post(url, json={"text": "x" * 5001}).status_code == 422


def test_patient_cannot_read_review_notes(world: World) -> None:
    world.login("anna")
    assert world.client.get(f"/api/patients/{world.anna}/review-notes").status_code == 403


# --- sources, ask, audit -------------------------------------------------------------------------


def test_sources(world: World) -> None:
    r = world.client.get("/api/sources")
    assert r.status_code == 200
    ids = {s["id"] for s in r.json()}
    assert "labat2008" in ids
    one = world.client.get("/api/sources/labat2008").json()
    assert one["link"].startswith("https://")
    assert world.client.get("/api/sources/nope").status_code == 404
    assert world.client.get("/api/sources/BAD!").status_code == 422


def test_ask_answers_with_sources(world: World) -> None:
    world.login("clin1")
    r = world.client.post("/api/ask", json={"question": "Can LDN be taken with tramadol?"})
    assert r.status_code == 200, r.text
    assert r.json()
    assert world.client.post("/api/ask", json={"question": "x"}).status_code == 422
    r = world.client.post("/api/ask", json={"question": "what dose?", "patient_id": "carl"})
    assert r.status_code == 404


def test_audit_log_is_for_admins(world: World) -> None:
    world.login("clin1")
    assert world.client.get("/api/audit").status_code == 403
    world.logout()
    world.login("root")
    r = world.client.get("/api/audit?limit=5")
    assert r.status_code == 200 and len(r.json()) == 5
    assert world.client.get("/api/audit?limit=0").status_code == 422


def test_every_view_and_change_is_audited(world: World) -> None:
    world.login("clin1")
    before = len(repository.audit_entries(world.engine))
    world.client.get(f"/api/patients/{world.anna}")
    world.client.post(f"/api/patients/{world.anna}/diary", json={"day": "2026-03-01"})
    world.client.get(f"/api/patients/{world.anna}/handout.pdf")
    rows = repository.audit_entries(world.engine)[before:]
    kinds = {(r.who, r.action, r.entity) for r in rows}
    assert ("web:clin1", "read", "patient") in kinds
    assert ("web:clin1", "read", "plan") in kinds
    assert ("web:clin1", "create", "diary_entry") in kinds
    assert ("web:clin1", "export", "handout") in kinds
    assert any(
        r.who == "web:clin1" and r.action == "login" for r in repository.audit_entries(world.engine)
    )


def test_openapi_documents_the_api(world: World) -> None:
    paths = world.client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/patients",
        "/api/patients/{patient_id}/assessments",
        "/api/patients/{patient_id}/plans",
        "/api/patients/{patient_id}/diary",
        "/api/patients/{patient_id}/diary/import",
        "/api/patients/{patient_id}/review-notes",
        "/api/sources",
        "/api/ask",
    ):
        assert path in paths
    assert "/login" not in paths
