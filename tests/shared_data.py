"""Where the external test material lives: ``../shared/data`` beside the project root.

CI clones the project into another folder with a copy of ``shared/`` beside it, so the path is
found relative to this file, never as an absolute path. ``LDNCARE_SHARED`` overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LDNCARE_SHARED", ROOT.parent / "shared")) / "data"
SYNTHEA = SHARED / "synthea"
CDC_TERMINOLOGY = SHARED / "drug-classes" / "opioid-cds-terminology-bundle.json"
FHIR_EXAMPLES = SHARED / "fhir-examples"
CDS_HOOKS = SHARED / "cds-hooks"

if not SHARED.is_dir():  # pragma: no cover - a broken checkout, not a test outcome
    raise RuntimeError(f"external test material not found at {SHARED}; set LDNCARE_SHARED")


def synthea_bundles() -> list[Path]:
    """The Synthea patient bundles (not the index, practitioner or hospital files)."""
    return sorted(
        p
        for p in SYNTHEA.glob("*.json")
        if not p.name.startswith("_")
        and not p.name.startswith(("practitionerInformation", "hospitalInformation"))
    )
