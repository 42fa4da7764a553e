"""FHIR R4 adapters: read patients from Bundles (export lives next to it)."""

from ldncare.fhir.patient_bundle import LAB_LOINC, patient_from_bundle

__all__ = ["LAB_LOINC", "patient_from_bundle"]
