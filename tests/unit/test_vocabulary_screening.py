"""Vocabulary additions of issue 14: kratom/7-OH, free dose text, MS drugs, companions."""

from __future__ import annotations

import pytest

from ldncare.core.patient import Condition, MedicationUse
from ldncare.evidence.vocabulary import load_vocabulary

VOCAB = load_vocabulary()


def classes(name: str, dose: str | None = None) -> frozenset[str]:
    return VOCAB.classify_medication(MedicationUse(name=name, dose_text=dose))


@pytest.mark.parametrize(
    "name",
    ["Kratom", "Maeng Da kratom powder", "Mitragyna speciosa leaf", "mitragynine 20 mg",
     "7-Hydroxymitragynine", "7-OH gummies", "7-OHMG tablets"],
)  # fmt: skip
def test_kratom_and_its_alkaloids_are_opioids_by_name(name: str) -> None:
    assert {"opioid", "opioid_acting_substance"} <= classes(name)


def test_kratom_named_only_in_the_dose_text_is_recognised() -> None:
    assert "opioid" in classes("Herbal supplement", "kratom 2 g three times daily")


def test_dose_text_adds_only_free_text_classes() -> None:
    # A dose text that mentions another medicine must not give the product that medicine's class.
    assert classes("Calcium carbonate 500 mg", "4 hours apart from levothyroxine") == frozenset()
    assert "opioid" not in classes("Docusate 100 mg", "while on oxycodone")


@pytest.mark.parametrize(
    "name",
    ["Gilenya", "fingolimod 0.5 mg", "Mayzent", "Zeposia", "Ponvory", "Tecfidera", "Vumerity",
     "Aubagio", "Tysabri", "Ocrevus", "Kesimpta", "Lemtrada", "Mavenclad"],
)  # fmt: skip
def test_ms_disease_modifying_drugs_are_immunosuppressants(name: str) -> None:
    assert {"immunosuppressant", "ms_dmt"} <= classes(name)


def test_companions_and_antidiarrhoeals_are_not_opioids() -> None:
    for name in ("Relistor", "Narcan 4 mg nasal spray", "Imodium", "Lomotil"):
        assert "opioid" not in classes(name), name
    assert "opioid_companion" in classes("methylnaltrexone 12 mg injection")
    assert "opioid_antidiarrheal" in classes("Lomotil")


@pytest.mark.parametrize(
    ("text", "cls"),
    [
        ("Kratom dependence", "kratom_use"),
        ("Kratom use disorder", "kratom_use"),
        ("Kidney transplant recipient", "organ_transplant"),
        ("Status post liver transplantation", "organ_transplant"),
        ("Allogeneic stem cell transplant", "organ_transplant"),
    ],
)
def test_screening_conditions_are_recognised(text: str, cls: str) -> None:
    assert cls in VOCAB.classify_condition(Condition(display=text))


@pytest.mark.parametrize(
    "text", ["Hair transplant", "Corneal graft", "Family history of kratom use"]
)
def test_look_alike_conditions_are_not(text: str) -> None:
    found = VOCAB.classify_condition(Condition(display=text))
    assert not found & {"organ_transplant", "kratom_use"}
