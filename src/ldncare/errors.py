"""The one exception family of ldncare.

Every error carries a human message that says what was wrong, where, and what is accepted.
Adapters map these to exit codes (CLI) and HTTP statuses (API) in one place each.
"""

from __future__ import annotations


class LdncareError(Exception):
    """Base class of every error ldncare raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: Dotted path of the offending input field (e.g. ``"medications[2].dose"``), if known.
        self.field = field

    def __str__(self) -> str:
        if self.field:
            return f"{self.field}: {self.message}"
        return self.message


class InvalidInput(LdncareError):
    """Input (patient file, FHIR bundle, option, diary entry) is malformed or out of range."""


class MissingFile(InvalidInput):
    """A file named in the input does not exist. The CLI exits 1 for it ("a file could not be
    used"), like any other file it cannot read; elsewhere it is bad input like its parent."""


class UnreadableFile(InvalidInput):
    """A file was found but cannot be read to its end (a truncated or corrupt ``.gz``). The
    CLI exits 1 for it, as README says for "a file that cannot be read"."""


class UnknownMedication(LdncareError):
    """A medication name or code could not be resolved where resolution is required."""


class EvidenceError(LdncareError):
    """The shipped evidence base is inconsistent (raised at load time, never at run time)."""


class NotFound(LdncareError):
    """A requested record (patient, plan, source) does not exist."""
