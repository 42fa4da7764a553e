"""CDS Hooks 2.0 service: discovery, patient-view and order-select/order-sign cards, feedback."""

from ldncare.cdshooks.app import create_cds_app
from ldncare.cdshooks.cards import validate_card, validate_response
from ldncare.cdshooks.service import SERVICES, build_router
from ldncare.cdshooks.settings import CdsSettings

__all__ = [
    "SERVICES",
    "CdsSettings",
    "build_router",
    "create_cds_app",
    "validate_card",
    "validate_response",
]
