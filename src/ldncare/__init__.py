"""ldncare: clinical decision support for low-dose naltrexone (LDN) in neuropathic pain."""

from ldncare.errors import (
    EvidenceError,
    InvalidInput,
    LdncareError,
    NotFound,
    UnknownMedication,
)

__version__ = "0.1.0"

__all__ = [
    "EvidenceError",
    "InvalidInput",
    "LdncareError",
    "NotFound",
    "UnknownMedication",
    "__version__",
]
