"""The security headers every response carries (pages, API, errors, 413 and 500 alike)."""

from __future__ import annotations

SECURITY_HEADERS = {
    # Patient data (JSON, diary CSV, handout PDF, calendar) must not stay in a shared browser
    # or proxy cache; /static/ is served without these headers and stays cacheable.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Inline SVG charts, style attributes and one local stylesheet; the pages run no script,
    # so an injected <script> or javascript: link cannot run either.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
}

#: As ASGI header pairs (lower-case names, bytes).
SECURITY_HEADER_BYTES = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
