"""What a granted SMART scope lets ldncare read: the plan is shown only when every resource
type it reads was granted, so a partial record (say, no opioid prescriptions) cannot look
complete. Vignettes plus hypothesis invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldncare.web.smart.scopes import (
    SCOPE_TYPES,
    grants_read,
    missing_reads,
    requested_scopes,
)
from ldncare.web.smart.settings import SmartSettings


def test_what_ldncare_asks_for_in_an_ehr_launch_is_enough_for_the_plan() -> None:
    asked = requested_scopes(standalone=False)
    assert missing_reads(asked) == []
    assert "launch" in asked.split() and "launch/patient" not in asked.split()


def test_the_medications_a_prescription_includes_are_asked_for_and_required() -> None:
    asked = requested_scopes(standalone=False).split()
    assert "patient/Medication.rs" in asked
    assert "patient/Medication.read" in requested_scopes(standalone=False, v1=True).split()
    without = " ".join(s for s in asked if s != "patient/Medication.rs")
    assert missing_reads(without) == ["Medication"]


def test_a_standalone_launch_asks_the_ehr_to_pick_a_patient() -> None:
    asked = requested_scopes(standalone=True).split()
    assert "launch/patient" in asked and "launch" not in asked


def test_a_smart1_server_is_asked_with_read_scopes_and_they_are_enough() -> None:
    asked = requested_scopes(standalone=False, v1=True)
    assert "patient/Observation.read" in asked.split()
    assert missing_reads(asked) == []


def test_a_wildcard_patient_grant_covers_every_type() -> None:
    assert missing_reads("launch patient/*.rs") == []
    assert missing_reads("patient/*.read") == []


def test_read_without_search_is_not_enough_since_ldncare_searches() -> None:
    assert not grants_read("patient/Condition.r", "Condition")
    assert grants_read("patient/Condition.rs", "Condition")
    assert grants_read("patient/Condition.cruds", "Condition")


def test_a_grant_narrowed_to_some_categories_does_not_count_as_the_whole_list() -> None:
    assert not grants_read("patient/Observation.rs?category=laboratory", "Observation")


def test_system_scopes_and_writes_do_not_count_for_a_patient_launch() -> None:
    assert not grants_read("system/MedicationRequest.rs", "MedicationRequest")
    assert not grants_read("patient/MedicationRequest.cud", "MedicationRequest")
    assert not grants_read("patient/MedicationRequest.write", "MedicationRequest")


_SCOPE = st.one_of(
    st.builds(
        lambda ctx, rtype, perms: f"{ctx}/{rtype}.{perms}",
        st.sampled_from(["patient", "user", "system"]),
        st.sampled_from([*SCOPE_TYPES, "*", "Encounter"]),
        st.sampled_from(["rs", "r", "s", "read", "write", "cruds", "cud", "*", "rs?x=y"]),
    ),
    st.sampled_from(["openid", "fhirUser", "launch", "launch/patient", "offline_access"]),
    st.text(max_size=20).filter(lambda t: " " not in t),
)


@given(st.lists(_SCOPE, max_size=12))
def test_missing_reads_is_exactly_the_types_no_scope_grants(scopes: list[str]) -> None:
    granted = " ".join(scopes)
    missing = missing_reads(granted)
    for rtype in SCOPE_TYPES:
        assert (rtype in missing) == (not grants_read(granted, rtype))


@given(st.lists(_SCOPE, max_size=12), st.sampled_from(SCOPE_TYPES))
def test_a_grant_never_covers_a_type_without_a_scope_naming_it_or_a_wildcard(
    scopes: list[str], rtype: str
) -> None:
    granted = " ".join(scopes)
    if grants_read(granted, rtype):
        assert any(
            s.startswith((f"patient/{rtype}.", "patient/*.", f"user/{rtype}.", "user/*."))
            and "?" not in s
            for s in scopes
        )


@given(st.lists(_SCOPE, max_size=12))
def test_adding_a_scope_never_takes_a_read_away(scopes: list[str]) -> None:
    granted = " ".join(scopes)
    more = granted + " patient/Encounter.rs"
    assert set(missing_reads(more)) <= set(missing_reads(granted))


@pytest.mark.parametrize(
    "issuers",
    ["http://ehr.example.org/fhir", "ftp://ehr.example.org/fhir", "not a url"],
)
def test_an_issuer_that_is_not_https_is_refused_in_the_settings(issuers: str) -> None:
    with pytest.raises(ValueError, match="LDNCARE_SMART_ALLOWED_ISSUERS"):
        SmartSettings(
            client_id="c", redirect_uri="https://x/smart/callback", allowed_issuers=issuers
        )


def test_smart_is_off_until_client_redirect_and_issuers_are_all_set() -> None:
    assert not SmartSettings().enabled
    assert not SmartSettings(client_id="c", redirect_uri="https://x/cb").enabled
    on = SmartSettings(
        client_id="c", redirect_uri="https://x/cb", allowed_issuers="https://ehr.example/fhir/"
    )
    assert on.enabled and on.issuers == ("https://ehr.example/fhir",)
