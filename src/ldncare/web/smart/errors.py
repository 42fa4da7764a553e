"""What can go wrong in a SMART launch, one class per step the clinician can be told about.

Each error carries the HTTP status of its page, a title and a message that says what happened
and what to do. None of them ever holds a token, a code or a verifier.
"""

from __future__ import annotations


class SmartError(Exception):
    """A launch step failed; the page shows ``title`` and ``message`` with ``status``."""

    status = 400
    title = "The launch from the EHR did not work"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IssuerRefused(SmartError):
    """The ``iss`` is missing or not one of LDNCARE_SMART_ALLOWED_ISSUERS."""

    status = 400
    title = "This EHR is not registered with ldncare"


class DiscoveryFailed(SmartError):
    """``.well-known/smart-configuration`` could not be read or lacks what ldncare needs."""

    status = 502
    title = "The EHR's SMART configuration could not be used"


class ConsentDenied(SmartError):
    """The authorization server answered ``error=access_denied`` (or another OAuth error)."""

    status = 403
    title = "Access was not granted"


class StateMismatch(SmartError):
    """The callback's ``state`` is not the one this browser's launch sent, or no launch is
    pending: a stale tab, a replayed link, or a forged request."""

    status = 400
    title = "This sign-in link does not belong to your launch"


class FormExpired(SmartError):
    """A Follow or End form came without this page's token (an old tab, a reloaded session,
    or a form posted from another site)."""

    status = 400
    title = "This page has expired"


class TokenRefused(SmartError):
    """The token endpoint refused the code (expired, used, PKCE verifier mismatch...)."""

    status = 401
    title = "The EHR refused to give ldncare access"


class SessionExpired(SmartError):
    """No SMART session, or its access token expired and cannot be refreshed."""

    status = 401
    title = "Your session with the EHR has ended"


class MissingScope(SmartError):
    """The granted scopes (or the FHIR server's 403) do not allow reading what the plan needs."""

    status = 403
    title = "ldncare was not allowed to read this patient's record"


class FhirServerDown(SmartError):
    """The EHR's FHIR server did not answer, timed out, or answered with an error."""

    status = 502
    title = "The EHR's FHIR server could not be read"
