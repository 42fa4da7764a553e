"""Medication and condition recognition, checked against the CDC opioid value sets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from ldncare.core.patient import Coding, Condition, MedicationUse
from ldncare.core.vocabulary import MEDICATION_CLASSES, MedicationVocabulary, Vocabulary
from ldncare.errors import EvidenceError
from ldncare.evidence.vocabulary import load_vocabulary
from tests.shared_data import CDC_MME_INGREDIENTS, CDC_MME_RESEARCH_INGREDIENTS, CDC_TERMINOLOGY

CDC_BUNDLE = CDC_TERMINOLOGY
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return load_vocabulary()


def _value_set(vs_id: str) -> list[dict[str, Any]]:
    bundle = json.loads(CDC_BUNDLE.read_text(encoding="utf-8"))
    for entry in bundle["entry"]:
        if entry["resource"]["id"] == vs_id:
            return list(entry["resource"]["expansion"]["contains"])
    raise AssertionError(f"value set {vs_id} not in the CDC bundle")


def med(name: str, code: str | None = None) -> MedicationUse:
    codes = (Coding(system=RXNORM, code=code),) if code else ()
    return MedicationUse(name=name, codes=codes)


def cond(name: str, code: str | None = None, system: str = SNOMED) -> Condition:
    codes = (Coding(system=system, code=code),) if code else ()
    return Condition(display=name, codes=codes)


# --- the CDC opioid value set as oracle ---------------------------------------------------


def test_every_cdc_opioid_analgesic_code_is_an_opioid_by_code(vocab: Vocabulary) -> None:
    concepts = _value_set("opioid-analgesics-with-ambulatory-misuse-potential")
    assert len(concepts) == 1177
    misses = [
        c["code"]
        for c in concepts
        if "opioid" not in vocab.medications.classify(med("x", c["code"]))
    ]
    assert misses == []


def _mme_ingredients() -> list[dict[str, Any]]:
    concepts: list[dict[str, Any]] = json.loads(CDC_MME_INGREDIENTS.read_text())["concept"]
    return concepts


def test_every_opioid_ingredient_code_of_the_cdc_mme_factors_is_that_opioid_by_code(
    vocab: Vocabulary,
) -> None:
    # A record coded only by the ingredient RxCUI (no name, no product code) is still an
    # opioid, and the ingredient the code names (its display, e.g. 6813 -> methadone).
    concepts = _mme_ingredients()
    assert len(concepts) == 10
    for c in concepts:
        classes = vocab.medications.classify(med(c["code"], c["code"]))
        assert "opioid" in classes, c
        assert vocab.medications.code_display(c["code"]) == c["display"].lower(), c


def test_every_opioid_ingredient_code_of_the_cdc_research_factors_is_an_opioid_by_code(
    vocab: Vocabulary,
) -> None:
    # The research CodeSystem adds buprenorphine 1819, meperidine 6754, levorphanol 6378 ...
    concepts = json.loads(CDC_MME_RESEARCH_INGREDIENTS.read_text())["concept"]
    assert len(concepts) == 18
    misses = [
        c["code"]
        for c in concepts
        if "opioid" not in vocab.medications.classify(med(c["code"], c["code"]))
        or not vocab.medications.code_display(c["code"])
    ]
    assert misses == []


def test_buprenorphine_by_its_ingredient_code_alone_is_buprenorphine(vocab: Vocabulary) -> None:
    assert {"opioid", "buprenorphine"} <= vocab.medications.classify(med("1819", "1819"))


def test_methadone_by_its_ingredient_code_alone_is_long_acting_and_prolongs_qt(
    vocab: Vocabulary,
) -> None:
    classes = vocab.medications.classify(med("6813", "6813"))
    assert {"opioid", "opioid_long_acting", "qt_prolonging"} <= classes


def test_every_cdc_opioid_analgesic_is_an_opioid_by_name_alone(vocab: Vocabulary) -> None:
    concepts = _value_set("opioid-analgesics-with-ambulatory-misuse-potential")
    misses = [
        c["display"]
        for c in concepts
        if "opioid" not in vocab.medications.classify(med(c["display"]))
    ]
    # Names-only recall: 0 misses of 1,177 (miss rate 0 %).
    assert misses == [], f"{len(misses)}/{len(concepts)} missed, e.g. {misses[:5]}"


def test_every_cdc_opioid_brand_alone_is_an_opioid(vocab: Vocabulary) -> None:
    brands = {
        b
        for c in _value_set("opioid-analgesics-with-ambulatory-misuse-potential")
        for b in re.findall(r"\[(.*?)\]", c["display"])
    }
    misses = sorted(b for b in brands if "opioid" not in vocab.medications.classify(med(b)))
    assert misses == []


@pytest.mark.parametrize(
    ("vs_id", "cls"),
    [
        ("extended-release-opioid-with-ambulatory-misuse-potential", "opioid_long_acting"),
        ("buprenorphine-and-methadone-medications", "opioid"),
        ("benzodiazepine-medications", "benzodiazepine"),
        ("naloxone-medications", "opioid_antagonist"),
    ],
)
def test_other_cdc_value_sets_are_recognised_by_name(
    vocab: Vocabulary, vs_id: str, cls: str
) -> None:
    concepts = _value_set(vs_id)
    misses = [
        c["display"] for c in concepts if cls not in vocab.medications.classify(med(c["display"]))
    ]
    assert misses == []


@pytest.mark.parametrize(
    "name",
    [
        "Acetaminophen 325 MG Oral Tablet",
        "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
        "Ibuprofen 200 MG Oral Tablet",
        "Naproxen sodium 220 MG Oral Tablet",
        "Naloxone Hydrochloride 4 MG/ACTUAT Nasal Spray [Narcan]",
        "Carbamazepine[Tegretol]",
        "Simvistatin 10 MG",
        "Acetaminophen 21.7 MG/ML / Dextromethorphan Hydrobromide 1 MG/ML / doxylamine "
        "succinate 0.417 MG/ML Oral Solution",
        "Methylnaltrexone 12 MG/0.6 ML injection [Relistor]",
        "Naltrexone 50 MG Oral Tablet",
    ],
)
def test_non_opioids_from_synthea_and_antagonists_are_not_opioids(
    vocab: Vocabulary, name: str
) -> None:
    assert "opioid" not in vocab.medications.classify(med(name))


# --- named vignettes ------------------------------------------------------------------------


def test_percocet_generic_combination_gets_union_of_ingredients(vocab: Vocabulary) -> None:
    m = med("Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet")
    assert "opioid" in vocab.medications.classify(m)
    assert vocab.medications.ingredients(m) == ("acetaminophen", "oxycodone")


def test_vicodin_brand_in_brackets_is_hydrocodone(vocab: Vocabulary) -> None:
    m = med("Hydrocodone Bitartrate 5 MG / Acetaminophen 325 MG [Vicodin]")
    assert "opioid" in vocab.medications.classify(m)
    assert set(vocab.medications.ingredients(m)) == {"hydrocodone", "acetaminophen"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Tylenol #3", {"opioid"}),
        ("Suboxone 8 mg/2 mg film", {"opioid", "buprenorphine", "opioid_antagonist"}),
        ("Subutex", {"buprenorphine", "opioid"}),
        ("Sublocade 100 mg", {"buprenorphine", "opioid_long_acting"}),
        ("Duragesic 25 mcg/hr", {"opioid", "opioid_long_acting", "serotonergic"}),
        ("Ultram 50 mg", {"tramadol", "opioid", "serotonergic"}),
        ("Tussionex suspension", {"opioid", "opioid_antitussive"}),
        ("Codeine / guaifenesin syrup", {"opioid_antitussive"}),
        ("Belbuca buccal film", {"buprenorphine"}),
        ("Butrans patch", {"opioid_long_acting"}),
        ("OxyContin 10 mg", {"opioid_long_acting"}),
        ("Dilaudid 2 mg", {"opioid"}),
        ("Methadone 10 mg", {"methadone", "opioid_long_acting", "qt_prolonging"}),
        ("Vivitrol 380 mg", {"naltrexone", "opioid_antagonist"}),
        ("Revia", {"naltrexone"}),
        ("Contrave 8 mg/90 mg extended-release tablet", {"naltrexone"}),
        ("Synthroid 100 mcg", {"levothyroxine", "thyroid_hormone"}),
        ("Tirosint", {"levothyroxine"}),
        ("Prograf 1 mg", {"immunosuppressant"}),
        ("Cyclosporine 100 mg", {"immunosuppressant"}),
        ("Prednisone 10 MG Oral Tablet", {"corticosteroid"}),
        ("Neurontin 300 mg", {"gabapentinoid"}),
        ("Horizant 600 mg", {"gabapentinoid"}),
        ("Lyrica 75 mg", {"gabapentinoid"}),
        ("Cymbalta 30 mg", {"snri", "serotonergic"}),
        ("Effexor XR 75 mg", {"snri"}),
        ("Elavil 10 mg", {"tca", "serotonergic"}),
        ("Pamelor 25 mg", {"tca"}),
        ("Nardil 15 mg", {"maoi", "serotonergic"}),
        ("Linezolid 600 mg", {"maoi", "serotonergic"}),
        ("Methylene blue injection", {"maoi"}),
        ("Sertraline 100MG", {"ssri", "serotonergic"}),
        ("Imitrex 50 mg", {"triptan", "serotonergic"}),
        ("Lithium carbonate 300 mg", {"lithium", "serotonergic"}),
        ("St. John's Wort 300 mg", {"serotonergic"}),
        ("Xanax 0.5 mg", {"benzodiazepine", "cns_depressant"}),
        ("Ambien 10 mg", {"cns_depressant"}),
        ("Celexa 20 mg", {"ssri", "qt_prolonging"}),
    ],
)
def test_brands_and_generics_get_their_classes(
    vocab: Vocabulary, name: str, expected: set[str]
) -> None:
    assert expected <= vocab.medications.classify(med(name))


def test_hydrocortisone_cream_is_not_a_systemic_corticosteroid(vocab: Vocabulary) -> None:
    assert "corticosteroid" not in vocab.medications.classify(
        med("Hydrocortisone 10 MG/ML Topical Cream")
    )


def test_short_acting_oxycodone_is_not_long_acting(vocab: Vocabulary) -> None:
    classes = vocab.medications.classify(med("Oxycodone Hydrochloride 5 MG Oral Tablet"))
    assert "opioid" in classes
    assert "opioid_long_acting" not in classes


def test_tramadol_found_by_rxnorm_code_even_with_a_vague_name(vocab: Vocabulary) -> None:
    # 835605 is "tramadol hydrochloride 50 MG Oral Tablet [Ultram]" in the CDC value set.
    classes = vocab.medications.classify(med("pain tablet", "835605"))
    assert {"opioid", "tramadol", "serotonergic"} <= classes


def test_every_class_used_in_the_data_is_a_known_class(vocab: Vocabulary) -> None:
    names = [
        "oxycodone", "tramadol", "naltrexone", "levothyroxine", "tacrolimus", "prednisone",
        "gabapentin", "duloxetine", "sertraline", "amitriptyline", "phenelzine", "sumatriptan",
        "lithium", "alprazolam", "zolpidem", "methadone", "buprenorphine", "pholcodine",
    ]  # fmt: skip
    used: set[str] = set()
    for n in names:
        used |= vocab.medications.ingredient_classes(n)
    assert used == MEDICATION_CLASSES


def test_a_brand_pointing_at_an_unknown_ingredient_is_an_evidence_error() -> None:
    drugs = {"ingredients": {"oxycodone": {"classes": ["opioid"]}},
             "brands": {"Percocet": {"ingredients": ["oxycodone", "paracetamolx"]}}}  # fmt: skip
    with pytest.raises(EvidenceError, match="Percocet"):
        MedicationVocabulary(drugs, {})


# --- conditions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code", "expected"),
    [
        ("Pudendal neuralgia", None, {"pudendal_neuralgia", "neuropathic_pain"}),
        ("Pudendal nerve entrapment", None, {"pudendal_neuralgia"}),
        ("Alcock canal syndrome", None, {"pudendal_neuralgia"}),
        ("Alcock's canal syndrome", None, {"pudendal_neuralgia", "chronic_pelvic_pain"}),
        ("Postherpetic neuralgia", None, {"neuropathic_pain"}),
        ("Trigeminal neuralgia", None, {"neuropathic_pain"}),
        ("Lumbar radiculopathy", None, {"neuropathic_pain"}),
        (
            "Neuropathy due to type 2 diabetes mellitus (disorder)",
            "368581000119106",
            {"neuropathic_pain"},
        ),
        ("Chronic pain", "82423001", {"chronic_pain"}),
        ("Fibromyalgia", "203082005", {"fibromyalgia", "chronic_pain"}),
        ("Opioid dependence, in remission", None, {"opioid_use_disorder", "substance_misuse"}),
        ("Opioid abuse (disorder)", "5602001", {"opioid_use_disorder"}),
        ("Acute hepatitis", None, {"hepatic_failure", "hepatic_impairment"}),
        ("Chronic hepatitis C", None, {"hepatic_impairment"}),
        ("Cirrhosis of liver", "19943007", {"hepatic_impairment"}),
        ("Chronic kidney disease stage 3a", None, {"ckd", "ckd_stage_3"}),
        ("Chronic kidney disease stage 1 (disorder)", "431855005", {"ckd", "ckd_stage_1"}),
        ("End stage renal disease", None, {"ckd", "ckd_stage_5"}),
        ("Hashimoto thyroiditis", "21983002", {"autoimmune_thyroid"}),
        ("Graves' disease", None, {"autoimmune_thyroid"}),
        ("Hypothyroidism", "40930008", {"hypothyroidism"}),
        ("Normal pregnancy", "72892002", {"pregnancy"}),
        ("Major depression disorder", "370143000", {"depression"}),
        ("Generalized anxiety disorder", None, {"anxiety"}),
        ("Insomnia", None, {"insomnia"}),
        ("First degree AV block", None, {"cardiac_conduction", "heart_disease"}),
        ("Left bundle branch block", None, {"cardiac_conduction"}),
        ("Long QT syndrome", None, {"cardiac_conduction"}),
        ("Acute myocardial infarction", "22298006", {"recent_mi", "heart_disease"}),
        ("Coronary Heart Disease", "53741008", {"heart_disease"}),
        ("Acute angle-closure glaucoma", None, {"angle_closure_glaucoma"}),
        ("Urinary retention", None, {"urinary_retention"}),
        ("Hypertension", "38341003", {"hypertension"}),
        ("Epilepsy", "84757009", {"seizure_disorder"}),
        ("Chronic obstructive bronchitis (disorder)", "185086009", {"respiratory_disease"}),
        ("Asthma", None, {"respiratory_disease"}),
        ("Alcohol dependence", None, {"substance_misuse"}),
        ("Frailty", None, {"frailty"}),
        ("Vulvodynia", None, {"chronic_pelvic_pain", "chronic_pain"}),
    ],
)
def test_conditions_are_classified(
    vocab: Vocabulary, name: str, code: str | None, expected: set[str]
) -> None:
    assert expected <= vocab.conditions.classify(cond(name, code))


def test_condition_code_alone_is_enough(vocab: Vocabulary) -> None:
    assert "fibromyalgia" in vocab.conditions.classify(cond("problem 1", "203082005"))
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    assert "ckd_stage_4" in vocab.conditions.classify(cond("problem 2", "N18.4", icd))
    assert "opioid_use_disorder" in vocab.conditions.classify(cond("problem 3", "F11.20", icd))


@pytest.mark.parametrize(
    ("name", "not_expected"),
    [
        ("Respiratory depression", "depression"),
        ("Family history of epilepsy", "seizure_disorder"),
        ("Pulmonary hypertension", "hypertension"),
        ("History of single seizure (situation)", "seizure_disorder"),
        ("Viral sinusitis (disorder)", "respiratory_disease"),
        ("Not pregnant", "pregnancy"),
    ],
)
def test_conditions_that_only_look_alike_are_not_classified(
    vocab: Vocabulary, name: str, not_expected: str
) -> None:
    assert not_expected not in vocab.conditions.classify(cond(name))
