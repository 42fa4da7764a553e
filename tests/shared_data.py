"""Where the test material lives: ``tests/fixtures/`` inside the repository.

The files are public, permissively licensed data copied byte for byte from their upstream
projects (``tests/fixtures/SOURCES.md`` gives origin and licence for each part), so a clone
alone runs every test. The module keeps its old name so that tests importing it need no change.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SYNTHEA = FIXTURES / "synthea"
CDC_TERMINOLOGY = FIXTURES / "drug-classes" / "opioid-cds-terminology-bundle.json"
#: The CDC MME conversion factors (CDC Opioid MME IG): one RxNorm ingredient code per opioid,
#: 10 in the clinical CodeSystem, 18 in the research one.
CDC_MME_INGREDIENTS = (
    FIXTURES / "drug-classes" / "mme" / "codesystem-CDCMMEClinicalConversionFactors.json"
)
CDC_MME_RESEARCH_INGREDIENTS = (
    FIXTURES / "drug-classes" / "mme" / "codesystem-CDCMMEResearchConversionFactors.json"
)
FHIR_EXAMPLES = FIXTURES / "fhir-examples"
R4_EXAMPLES = FHIR_EXAMPLES / "hl7.fhir.r4.examples-4.0.1"
CDC_EXAMPLES = FHIR_EXAMPLES / "hl7-cdc-opioid-cpg"
CDS_HOOKS = FIXTURES / "cds-hooks"

#: How many Synthea patient Bundles are vendored (the index lists them and one practitioner file).
SYNTHEA_PATIENTS = 8

if not SYNTHEA.is_dir():  # pragma: no cover - a broken checkout, not a test outcome
    raise RuntimeError(f"test fixtures not found at {FIXTURES}: the checkout is incomplete")


def synthea_bundles() -> list[Path]:
    """The Synthea patient bundles (not the index, practitioner or hospital files)."""
    return sorted(
        p
        for p in SYNTHEA.glob("*.json")
        if not p.name.startswith("_")
        and not p.name.startswith(("practitionerInformation", "hospitalInformation"))
    )
