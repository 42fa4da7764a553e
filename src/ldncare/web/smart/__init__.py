"""SMART on FHIR App Launch (issue #21): ldncare opened from inside an EHR.

Modules: ``settings`` (off until configured), ``scopes`` (what is asked and what a grant
allows), ``oauth`` (discovery, authorization, tokens, via authlib), ``sessions`` (tokens held on
the server), ``ehr_record`` (the patient's record from the EHR's FHIR server), ``routes``.
"""

from ldncare.web.smart.settings import SmartSettings

__all__ = ["SmartSettings"]
