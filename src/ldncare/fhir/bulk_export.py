"""Pull a FHIR Bulk Data export from an EHR into a folder the NDJSON import reads (issue #21).

FHIR Bulk Data Access 2.0 (https://hl7.org/fhir/uv/bulkdata/STU2/export.html):

1. kick-off: ``GET [base]/Group/[id]/$export`` (or ``[base]/Patient/$export``) with
   ``Accept: application/fhir+json`` and ``Prefer: respond-async``; the server answers 202 with
   the status URL in ``Content-Location``.
2. status: ``GET`` the status URL until it answers 200 with the manifest; 202 means "in
   progress" (``X-Progress`` says how far, ``Retry-After`` when to ask again); a 429 also names
   its ``Retry-After`` and is waited out, not counted as a failure.
3. the manifest's ``output`` files (NDJSON) are downloaded with the access token when
   ``requiresAccessToken`` is true; its ``error`` files hold OperationOutcomes, reported.

Authentication is SMART Backend Services
(https://hl7.org/fhir/smart-app-launch/backend-services.html): a ``client_credentials`` token
request authenticated by a JWT client assertion (``iss`` = ``sub`` = client id, ``aud`` = the
token URL, ``exp`` at most 5 minutes away, a fresh ``jti``) signed with ldncare's private key,
RS384 or ES384 (pyjwt), whose public key the EHR holds (a JWKS).

Resuming: the folder keeps ``state.json`` (the status URL, then the manifest) and each
finished file under ``files/``; a second run with the same folder polls the same export (no
new kick-off) and downloads only the files that are missing. A file that cannot be downloaded
is reported by name and the others are kept. The import itself is ``import_ndjson`` over
``files/``, as for an export copied by hand.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import jwt
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ldncare.errors import InvalidInput, LdncareError
from ldncare.fhir.ndjson import USED_TYPES

#: The resource types asked for (what the import reads).
EXPORT_TYPES = (
    "Patient",
    "Medication",
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "AllergyIntolerance",
)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: 401s in a row from the status URL before giving up (each one asks for a new token first).
MAX_UNAUTHORIZED = 3


class BulkExportFailed(LdncareError):
    """The EHR refused or failed the export (kick-off, status, token): nothing to import."""


class BulkSettings(BaseSettings):
    """SMART Backend Services credentials and bounds (prefix ``LDNCARE_BULK_``)."""

    model_config = SettingsConfigDict(env_prefix="LDNCARE_BULK_", extra="ignore")

    client_id: str = ""
    #: PEM file of ldncare's private key (RSA for RS384, P-384 EC for ES384).
    private_key_file: Path | None = None
    #: ``kid`` of the key as published in ldncare's JWKS at the EHR.
    key_id: str = ""
    algorithm: str = "RS384"
    #: Token URL; default: ``token_endpoint`` of ``[base]/.well-known/smart-configuration``.
    token_url: str = ""
    scope: str = " ".join(f"system/{t}.rs" for t in EXPORT_TYPES)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    #: Longest wait between two status polls (a larger Retry-After is cut to this).
    max_wait_seconds: float = Field(default=120.0, ge=0, le=3600)
    #: Give up polling after this long.
    deadline_seconds: float = Field(default=6 * 3600, gt=0)

    def checked(self) -> BulkSettings:
        if not self.client_id or self.private_key_file is None:
            raise InvalidInput(
                "a Bulk export from an EHR needs LDNCARE_BULK_CLIENT_ID and "
                "LDNCARE_BULK_PRIVATE_KEY_FILE (SMART Backend Services; see docs/SMART.md)",
                field="LDNCARE_BULK_CLIENT_ID",
            )
        if self.algorithm not in ALGORITHMS:
            raise InvalidInput(
                f"LDNCARE_BULK_ALGORITHM {self.algorithm!r} is not one of {', '.join(ALGORITHMS)}",
                field="LDNCARE_BULK_ALGORITHM",
            )
        return self


@dataclass
class BulkResult:
    """What was downloaded: the folder to import, the files, and what went wrong."""

    folder: Path
    downloaded: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    #: File name -> why it could not be downloaded.
    failed: dict[str, str] = field(default_factory=dict)
    #: Diagnostics from the manifest's error files (OperationOutcome).
    server_errors: list[str] = field(default_factory=list)


Progress = Callable[[str], None]


class _Token:
    """A Backend Services access token, asked for again shortly before it expires."""

    def __init__(self, http: httpx.Client, settings: BulkSettings, token_url: str) -> None:
        self.http = http
        self.settings = settings
        self.token_url = token_url
        self._value: str | None = None
        self._expires = 0.0

    def assertion(self) -> str:
        assert self.settings.private_key_file is not None
        key = self.settings.private_key_file.read_text()
        now = int(time.time())
        claims = {
            "iss": self.settings.client_id,
            "sub": self.settings.client_id,
            "aud": self.token_url,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        headers = {"kid": self.settings.key_id} if self.settings.key_id else None
        return jwt.encode(claims, key, algorithm=self.settings.algorithm, headers=headers)

    def value(self) -> str:
        if self._value is None or time.time() >= self._expires - 30:
            response = self.http.post(
                self.token_url,
                data={
                    "grant_type": "client_credentials",
                    "scope": self.settings.scope,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": self.assertion(),
                },
            )
            if response.status_code != 200:
                raise BulkExportFailed(
                    f"the EHR's token endpoint refused ldncare's Backend Services sign-in "
                    f"(HTTP {response.status_code}: {_oauth_error(response)}); check the client "
                    "id, the key and that the EHR holds ldncare's public key"
                )
            body = response.json()
            self._value = str(body["access_token"])
            self._expires = time.time() + float(body.get("expires_in", 300))
        return self._value

    def forget(self) -> None:
        self._value = None


def _encrypted_or_local(url: str) -> bool:
    """``https``, or plain ``http`` to this machine only (a test or a tunnel)."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (
        parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS
    )


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def same_server(url: str, base: str) -> bool:
    """Whether ``url`` is on the EHR's own server, by scheme, host and port: the access token
    goes nowhere else, and never over plain http from an https base."""
    return _origin(url) == _origin(base)


def check_server_url(base: str) -> str:
    """The FHIR base URL, refused unless https (plain http only to this machine): the Bulk
    access token must not travel unencrypted."""
    parts = urlsplit(base)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(f"{base!r} is not an http(s) URL", field="--fhir-server")
    if not _encrypted_or_local(base):
        raise InvalidInput(
            f"{base!r} must use https: the access token is not sent over plain http (plain "
            "http is accepted for a server on this machine only)",
            field="--fhir-server",
        )
    return base.rstrip("/")


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no details"
    if isinstance(body, dict):
        return str(body.get("error_description") or body.get("error") or "no details")[:200]
    return "no details"


def _outcome_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    issues = body.get("issue") if isinstance(body, dict) else None
    texts = [
        str(i.get("diagnostics") or i.get("details", {}).get("text") or "")
        for i in issues or ()
        if isinstance(i, dict)
    ]
    return "; ".join(t for t in texts if t)[:300]


def retry_after(response: httpx.Response, default: float) -> float:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date), else ``default``."""
    value = response.headers.get("Retry-After")
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


def _token_url(http: httpx.Client, base: str, settings: BulkSettings) -> str:
    if settings.token_url:
        token_url: object = settings.token_url
    else:
        token_url = _discovered_token_url(http, base)
    if not isinstance(token_url, str) or not _encrypted_or_local(token_url):
        raise BulkExportFailed(
            f"the token URL {token_url!r} is not https; ldncare does not sign in over plain http"
        )
    return token_url


def _discovered_token_url(http: httpx.Client, base: str) -> str:
    url = f"{base}/.well-known/smart-configuration"
    try:
        response = http.get(url, headers={"Accept": "application/json"})
        config = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        config = None
    token_url = config.get("token_endpoint") if isinstance(config, dict) else None
    if not isinstance(token_url, str):
        raise BulkExportFailed(
            f"{url} names no token_endpoint; set LDNCARE_BULK_TOKEN_URL to the EHR's token URL"
        )
    return token_url


def _kick_off(http: httpx.Client, base: str, group: str | None, token: _Token) -> str:
    path = f"Group/{quote(group, safe='')}/$export" if group else "Patient/$export"
    response = http.get(
        f"{base}/{path}",
        params={"_type": ",".join(EXPORT_TYPES)},
        headers={
            "Accept": "application/fhir+json",
            "Prefer": "respond-async",
            "Authorization": f"Bearer {token.value()}",
        },
    )
    location = response.headers.get("Content-Location")
    if response.status_code != 202 or not location:
        detail = _outcome_text(response)
        raise BulkExportFailed(
            f"the EHR did not start the export ({path}: HTTP {response.status_code}"
            + (f": {detail}" if detail else "")
            + ")"
        )
    if not same_server(location, base):
        raise BulkExportFailed(
            "the EHR named an export status URL on another server or not on https; the access "
            "token is not sent there"
        )
    return str(location)


def _poll(
    http: httpx.Client, status_url: str, token: _Token, settings: BulkSettings, progress: Progress
) -> dict[str, Any]:
    started = time.monotonic()
    unauthorized = 0
    while True:
        response = http.get(
            status_url,
            headers={"Accept": "application/json", "Authorization": f"Bearer {token.value()}"},
        )
        if response.status_code == 200:
            unauthorized = 0
            manifest = response.json()
            if not isinstance(manifest, dict) or not isinstance(manifest.get("output"), list):
                raise BulkExportFailed("the EHR's export manifest has no output list")
            return manifest
        if response.status_code == 401:
            # A new token once at once; then back off (1 s, 2 s, ...) and give up after a few:
            # an EHR that keeps refusing is not asked thousands of times a second.
            unauthorized += 1
            if unauthorized > MAX_UNAUTHORIZED:
                raise BulkExportFailed(
                    f"the EHR refused ldncare's access to the export status {unauthorized} times "
                    "in a row (HTTP 401) even with a new token; check the client's scopes at "
                    "the EHR"
                )
            token.forget()
            wait = min(float(2 ** (unauthorized - 1) - 1), settings.max_wait_seconds)
            if wait:
                progress(f"the EHR refused the access token (401); asking again in {wait:g} s")
        elif response.status_code in (202, 429):
            unauthorized = 0
            wait = min(retry_after(response, 1.0), settings.max_wait_seconds)
            what = "busy (429)" if response.status_code == 429 else "in progress"
            shown = response.headers.get("X-Progress", "")
            progress(f"export {what}{': ' + shown if shown else ''}; asking again in {wait:g} s")
        else:
            detail = _outcome_text(response)
            raise BulkExportFailed(
                f"the EHR's export failed (HTTP {response.status_code}"
                + (f": {detail}" if detail else "")
                + ")"
            )
        if time.monotonic() - started + wait > settings.deadline_seconds:
            raise BulkExportFailed(
                f"the export was not ready within {settings.deadline_seconds:g} s "
                "(LDNCARE_BULK_DEADLINE_SECONDS); run the same command again to keep waiting"
            )
        time.sleep(wait)


def _file_name(item: dict[str, Any], index: int) -> str:
    rtype = item.get("type")
    if not isinstance(rtype, str) or rtype not in USED_TYPES:
        rtype = "Other"
    return f"{rtype}_{index}.ndjson"


def _download(http: httpx.Client, url: str, target: Path, token: _Token | None, base: str) -> None:
    headers = {"Accept": "application/fhir+ndjson"}
    if token is not None:
        # The token goes only to the EHR's own server, never to another host named in a manifest.
        if not same_server(url, base):
            raise BulkExportFailed(
                "its URL is on another server or not https; the access token is not sent"
            )
        headers["Authorization"] = f"Bearer {token.value()}"
    partial = target.with_name(target.name + ".part")
    with http.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            raise BulkExportFailed(f"HTTP {response.status_code} from {url}")
        with partial.open("wb") as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
    partial.replace(target)


def _error_file(http: httpx.Client, url: str, token: _Token | None, base: str) -> list[str]:
    """The diagnostics of one of the manifest's error files (NDJSON OperationOutcomes); a
    line that is not an OperationOutcome object is counted, not a crash."""
    headers = {"Accept": "application/fhir+ndjson"}
    if token is not None:
        if not same_server(url, base):  # as for output files: the token stays with the EHR
            return [
                "an error file on another server or not on https was not read (the access "
                "token is not sent there)"
            ]
        headers["Authorization"] = f"Bearer {token.value()}"
    try:
        response = http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return [f"error file not read ({type(exc).__name__})"]
    if response.status_code != 200:
        return [f"error file not read (HTTP {response.status_code})"]
    texts: list[str] = []
    unreadable = 0
    for line in response.text.splitlines():
        if not line.strip():
            continue
        try:
            outcome = json.loads(line)
        except ValueError:
            outcome = None
        issues = outcome.get("issue") if isinstance(outcome, dict) else None
        if not isinstance(issues, list):
            unreadable += 1
            continue
        for issue in issues:
            if not isinstance(issue, dict):
                continue
            details = issue.get("details")
            text = issue.get("diagnostics") or (
                details.get("text") if isinstance(details, dict) else None
            )
            if text:
                texts.append(str(text)[:300])
    if unreadable:
        texts.append(f"{unreadable} line(s) of an error file were not OperationOutcomes")
    return texts


def pull_export(
    base: str,
    folder: Path,
    *,
    group: str | None = None,
    settings: BulkSettings | None = None,
    progress: Progress = lambda _message: None,
    transport: httpx.BaseTransport | None = None,
) -> BulkResult:
    """Run (or resume) the export of ``base`` into ``folder``; the NDJSON lands in
    ``folder/files``. Raises :class:`BulkExportFailed` when there is nothing to import."""
    settings = (settings or BulkSettings()).checked()
    base = check_server_url(base)
    folder.mkdir(parents=True, exist_ok=True)
    files = folder / "files"
    partial = folder / "partial"
    files.mkdir(exist_ok=True)
    partial.mkdir(exist_ok=True)
    state_file = folder / "state.json"
    state: dict[str, Any] = json.loads(state_file.read_text()) if state_file.exists() else {}
    if state and (state.get("base"), state.get("group")) != (base, group):
        raise InvalidInput(
            f"{folder} holds an export of {state.get('base')} (group {state.get('group')}); "
            "use another --download-dir for this server or group",
            field="--download-dir",
        )
    result = BulkResult(folder=files)
    with httpx.Client(timeout=settings.timeout_seconds, transport=transport) as http:
        token = _Token(http, settings, _token_url(http, base, settings))
        if "manifest" not in state:
            if "status_url" not in state:
                state = {
                    "base": base,
                    "group": group,
                    "status_url": _kick_off(http, base, group, token),
                }
                state_file.write_text(json.dumps(state))
                progress("export started")
            else:
                progress("resuming the export started earlier")
            state["manifest"] = _poll(http, state["status_url"], token, settings, progress)
            state_file.write_text(json.dumps(state))
        manifest = state["manifest"]
        needs_token = bool(manifest.get("requiresAccessToken"))
        outputs = [o for o in manifest["output"] if isinstance(o, dict)]
        for index, item in enumerate(outputs, start=1):
            name = _file_name(item, index)
            target = files / name
            if target.exists():
                result.resumed.append(name)
                continue
            progress(f"downloading {name} ({index} of {len(outputs)})")
            try:
                _download(
                    http, str(item.get("url")), partial / name, token if needs_token else None, base
                )
                (partial / name).replace(target)
                result.downloaded.append(name)
            except (BulkExportFailed, httpx.HTTPError) as exc:
                reason = exc.message if isinstance(exc, BulkExportFailed) else type(exc).__name__
                result.failed[name] = reason
        for item in manifest.get("error") or ():
            if isinstance(item, dict):
                result.server_errors.extend(
                    _error_file(http, str(item.get("url")), token if needs_token else None, base)
                )
    return result
