"""A test EHR for the SMART on FHIR suite: a real OAuth 2.0 authorization server (authlib's
Flask server: authorization code with PKCE S256 required, refresh tokens), SMART discovery,
launch context, and a FHIR endpoint serving the vendored Synthea patients, on a real socket.

It plays the EHR *and* its user: the authorization endpoint approves at once (the user said
yes), unless a test sets :attr:`SmartEhr.deny` (the user said no) or narrows what is granted
(:attr:`SmartEhr.grant_scope`). Tokens, codes and launches live in memory.

    with SmartEhr(patients) as ehr:
        launch = ehr.new_launch(patient_id)   # what the EHR puts in the launch URL
        ehr.fhir_base                         # the iss
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError, grants
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flask import Flask, Response, jsonify, redirect, request
from joserfc import jwk
from joserfc import jwt as joserfc_jwt
from joserfc.errors import JoseError
from werkzeug.serving import make_server

CLIENT_ID = "ldncare-test"
#: The Backend Services client (Bulk Data), authenticated by a signed JWT.
BULK_CLIENT_ID = "ldncare-bulk"
BULK_GROUP = "ldn-cohort"
RESOURCE_TYPES = (
    "Patient",
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "AllergyIntolerance",
)


@dataclass
class _Client:
    client_id: str
    redirect_uri: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # a public client: PKCE, no secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class _BackendClient:
    """SMART Backend Services: no user, a JWT client assertion checked with this public key."""

    client_id: str
    public_key_pem: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s.startswith("system/"))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == JWTBearerClientAssertion.CLIENT_AUTH_METHOD

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


@dataclass
class _Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    patient: str
    app_context: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class _Token:
    access_token: str
    refresh_token: str | None
    scope: str
    patient: str
    client_id: str
    expires_at: float
    revoked: bool = False

    def check_client(self, client: _Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_at - time.time())

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return "dr-test"


@dataclass
class _Record:
    patient: dict[str, Any]
    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def load_patients(paths: Iterable[Path]) -> dict[str, _Record]:
    """Each FHIR Bundle file -> its Patient and the resources of the types the EHR serves."""
    records: dict[str, _Record] = {}
    for path in paths:
        bundle = json.loads(path.read_text())
        resources = [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        record = _Record(patient)
        for resource in resources:
            if resource["resourceType"] in RESOURCE_TYPES[1:]:
                record.resources.setdefault(resource["resourceType"], []).append(resource)
        records[patient["id"]] = record
    return records


def _grants(scope: str, rtype: str) -> bool:
    scopes = scope.split()
    return any(
        s in scopes for s in (f"patient/{rtype}.rs", f"patient/{rtype}.read", "patient/*.rs")
    )


class SmartEhr:
    """The EHR: start it with ``with``; ``fhir_base`` is the iss."""

    def __init__(
        self,
        records: dict[str, _Record],
        *,
        redirect_uri: str = "http://testserver/smart/callback",
        bulk_public_key: str | None = None,
        code_ttl: float = 60,
        token_ttl: int = 3600,
        page_size: int = 50,
    ) -> None:
        self.records = records
        self.client = _Client(CLIENT_ID, redirect_uri)
        self.bulk_client = (
            _BackendClient(BULK_CLIENT_ID, bulk_public_key) if bulk_public_key else None
        )
        #: Bulk export behaviour: status answers 202 this many times, then 429 this many
        #: times (each with Retry-After: 1), then the manifest.
        self.bulk_in_progress = 1
        self.bulk_throttled = 1
        #: Output files that answer 500 (by file name).
        self.bulk_failing: set[str] = set()
        self.bulk_requires_token = True
        self.bulk_kickoffs = 0
        self.bulk_polls: list[tuple[float, int]] = []
        self.bulk_downloads: list[str] = []
        self._jobs: dict[str, int] = {}
        self.code_ttl = code_ttl
        self.token_ttl = token_ttl
        self.page_size = page_size
        #: The user refuses consent: the authorization endpoint answers error=access_denied.
        self.deny = False
        #: Grant these scopes instead of those asked for (None: grant what was asked).
        self.grant_scope: str | None = None
        #: The patient the user picks in a standalone launch.
        self.picked_patient: str | None = next(iter(records), None)
        #: Every FHIR read answers this status instead (e.g. 503: the FHIR server is down).
        self.fhir_status: int | None = None
        #: Seconds every FHIR read waits before answering (a server that hangs).
        self.fhir_delay = 0.0
        #: Issue no refresh token.
        self.refresh = True
        #: What discovery lists as code_challenge_methods_supported.
        self.pkce_methods: list[str] = ["S256"]
        self._seen_jti: set[str] = set()
        #: The key the EHR signs id tokens with (published at /auth/jwks).
        self.signing_key = jwk.RSAKey.generate_key(2048, parameters={"kid": "ehr-1"})
        #: Sign id tokens with another key than the published one (a forged token).
        self.forge_id_token = False
        self.launches: dict[str, str] = {}
        self.app_contexts: dict[str, str] = {}
        self.codes: dict[str, _Code] = {}
        self.tokens: dict[str, _Token] = {}
        self.refresh_tokens: dict[str, _Token] = {}
        #: Every request the FHIR endpoint answered: (path, Authorization header).
        self.fhir_requests: list[tuple[str, str]] = []
        self.token_requests = 0
        #: How often ``.well-known/smart-configuration`` was read.
        self.discovery_requests = 0
        self.app = self._build()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        self.fhir_base = f"{self.base}/fhir"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SmartEhr:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(5)

    def new_launch(self, patient_id: str, app_context: str | None = None) -> str:
        """The opaque ``launch`` value of an EHR launch on ``patient_id`` (from a CDS card
        link: with the link's ``appContext``, returned in the token response)."""
        value = secrets.token_urlsafe(16)
        self.launches[value] = patient_id
        if app_context is not None:
            self.app_contexts[value] = app_context
        return value

    def expire_tokens(self) -> None:
        """Every access token expires now (refresh tokens still work)."""
        for token in self.tokens.values():
            token.expires_at = time.time() - 1

    def id_token(self) -> str:
        """An OpenID Connect id_token for the test user (fhirUser: a Practitioner)."""
        now = int(time.time())
        claims = {
            "iss": self.fhir_base,
            "sub": "dr-test",
            "aud": self.client.client_id,
            "iat": now,
            "exp": now + 300,
            "fhirUser": f"{self.fhir_base}/Practitioner/dr-test",
        }
        key = (
            jwk.RSAKey.generate_key(2048, parameters={"kid": "ehr-1"})
            if self.forge_id_token
            else self.signing_key
        )
        return joserfc_jwt.encode({"alg": "RS256", "kid": "ehr-1"}, claims, key)

    def _query_client(self, client_id: str) -> _Client | _BackendClient | None:
        if client_id == self.client.client_id:
            return self.client
        if self.bulk_client is not None and client_id == self.bulk_client.client_id:
            return self.bulk_client
        return None

    def ndjson(self, rtype: str) -> str:
        """The export file of ``rtype``: every patient's resources of that type."""
        if rtype == "Patient":
            items = [r.patient for r in self.records.values()]
        else:
            items = [x for r in self.records.values() for x in r.resources.get(rtype, [])]
        return "".join(json.dumps(x) + "\n" for x in items)

    def _add_bulk(self, app: Flask) -> None:
        """FHIR Bulk Data 2.0: kick-off, status (202 -> 429 -> manifest), files."""
        ehr = self
        types = ("Patient", "Condition", "MedicationRequest", "Observation")

        def system_token() -> bool:
            header = request.headers.get("Authorization", "")
            token = ehr.tokens.get(header.removeprefix("Bearer ").strip())
            return (
                token is not None
                and not token.is_expired()
                and any(s.startswith("system/") for s in token.scope.split())
            )

        def kick_off() -> Response:
            if not system_token():
                return Response(status=401)
            if request.headers.get("Prefer") != "respond-async":
                return Response("Prefer: respond-async is required", status=400)
            ehr.bulk_kickoffs += 1
            job = secrets.token_urlsafe(8)
            ehr._jobs[job] = 0
            response = Response(status=202)
            response.headers["Content-Location"] = f"{ehr.base}/bulk/status/{job}"
            return response

        @app.get("/fhir/Group/<gid>/$export")
        def group_export(gid: str) -> Response:
            if gid != BULK_GROUP:
                outcome = {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": "error", "code": "not-found", "diagnostics": "no such Group"}
                    ],
                }
                return Response(json.dumps(outcome), status=404, mimetype="application/fhir+json")
            return kick_off()

        @app.get("/fhir/Patient/$export")
        def patient_export() -> Response:
            return kick_off()

        @app.get("/bulk/status/<job>")
        def status(job: str) -> Response:
            if not system_token():
                return Response(status=401)
            if job not in ehr._jobs:
                return Response(status=404)
            polls = ehr._jobs[job]
            ehr._jobs[job] = polls + 1
            if polls < ehr.bulk_in_progress:
                ehr.bulk_polls.append((time.monotonic(), 202))
                response = Response(status=202)
                response.headers["X-Progress"] = f"{50 * (polls + 1)}% done"
                response.headers["Retry-After"] = "1"
                return response
            if polls < ehr.bulk_in_progress + ehr.bulk_throttled:
                ehr.bulk_polls.append((time.monotonic(), 429))
                response = Response(status=429)
                response.headers["Retry-After"] = "1"
                return response
            ehr.bulk_polls.append((time.monotonic(), 200))
            return jsonify(
                {
                    "transactionTime": "2026-03-02T10:00:00Z",
                    "request": f"{ehr.fhir_base}/Group/{BULK_GROUP}/$export",
                    "requiresAccessToken": ehr.bulk_requires_token,
                    "output": [
                        {"type": t, "url": f"{ehr.base}/bulk/files/{t}_1.ndjson"} for t in types
                    ],
                    "error": [
                        {"type": "OperationOutcome", "url": f"{ehr.base}/bulk/files/errors.ndjson"}
                    ],
                }
            )

        @app.get("/bulk/files/<name>")
        def bulk_file(name: str) -> Response:
            if ehr.bulk_requires_token and not system_token():
                return Response(status=401)
            ehr.bulk_downloads.append(name)
            if name in ehr.bulk_failing:
                return Response(status=500)
            if name == "errors.ndjson":
                outcome = {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "error",
                            "code": "processing",
                            "diagnostics": "MedicationStatement could not be exported",
                        }
                    ],
                }
                return Response(json.dumps(outcome) + "\n", mimetype="application/fhir+ndjson")
            rtype = name.split("_", 1)[0]
            return Response(ehr.ndjson(rtype), mimetype="application/fhir+ndjson")

    # --- the Flask app ---------------------------------------------------------------------------

    def _build(self) -> Flask:
        app = Flask("smart_ehr")
        app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = True
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {
            "authorization_code": self.token_ttl,
            "refresh_token": self.token_ttl,
        }
        ehr = self

        def save_token(token: dict[str, Any], req: Any) -> None:
            ehr.token_requests += 1
            source = getattr(req, "authorization_code", None) or getattr(req, "refresh_token", None)
            patient = source.patient if source is not None else ""  # "" = a system token
            if not ehr.refresh:
                token.pop("refresh_token", None)
            stored = _Token(
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token"),
                scope=token.get("scope", ""),
                patient=patient,
                client_id=req.client.get_client_id(),
                expires_at=time.time() + token["expires_in"],
            )
            ehr.tokens[stored.access_token] = stored
            if stored.refresh_token:
                ehr.refresh_tokens[stored.refresh_token] = stored
            if source is None:
                return
            # SMART launch context in the token response (app-launch.html, "Response").
            token["patient"] = patient
            if "openid" in stored.scope.split() and getattr(source, "code", None):
                token["id_token"] = ehr.id_token()
            app_context = getattr(source, "app_context", None)
            if app_context is not None:
                token["appContext"] = app_context

        server = AuthorizationServer(
            app,
            query_client=ehr._query_client,
            save_token=save_token,
        )

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["none"]

            def save_authorization_code(self, code: str, req: Any) -> None:
                data = req.payload.data
                launch = data.get("launch")
                scope = ehr.grant_scope if ehr.grant_scope is not None else req.scope
                app_context = None
                if launch is not None:
                    patient = ehr.launches.pop(launch)
                    app_context = ehr.app_contexts.pop(launch, None)
                else:
                    assert "launch/patient" in req.scope.split()
                    assert ehr.picked_patient is not None
                    patient = ehr.picked_patient
                ehr.codes[code] = _Code(
                    code=code,
                    client_id=req.client.client_id,
                    redirect_uri=req.payload.redirect_uri,
                    scope=scope,
                    patient=patient,
                    app_context=app_context,
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                    expires_at=time.time() + ehr.code_ttl,
                )

            def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
                found = ehr.codes.get(code)
                if found is None or found.client_id != client.client_id:
                    return None
                if time.time() >= found.expires_at:
                    return None
                return found

            def delete_authorization_code(self, authorization_code: _Code) -> None:
                ehr.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: _Code) -> str:
                return "dr-test"

        class RefreshGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["none"]
            INCLUDE_NEW_REFRESH_TOKEN = True

            def authenticate_refresh_token(self, refresh_token: str) -> _Token | None:
                found = ehr.refresh_tokens.get(refresh_token)
                return None if found is None or found.revoked else found

            def authenticate_user(self, refresh_token: _Token) -> str:
                return "dr-test"

            def revoke_old_credential(self, refresh_token: _Token) -> None:
                refresh_token.revoked = True

        class Assertion(JWTBearerClientAssertion):
            def get_audiences(self) -> list[str]:
                return [f"{ehr.base}/auth/token"]

            def validate_jti(self, claims: Any, jti: str) -> bool:
                if jti in ehr._seen_jti:
                    return False
                ehr._seen_jti.add(jti)
                return True

            def resolve_client_public_key(self, client: _BackendClient) -> Any:
                public = load_pem_public_key(client.public_key_pem.encode())
                kind = "EC" if isinstance(public, ec.EllipticCurvePublicKey) else "RSA"
                return jwk.import_key(client.public_key_pem, kind)

            def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
                # SMART Backend Services signs with RS384 or ES384 (backend-services.html),
                # which joserfc leaves out of its default ("recommended") algorithms.
                try:
                    token = joserfc_jwt.decode(
                        assertion, resolve_key, algorithms=["RS384", "ES384"]
                    )
                except JoseError as error:
                    raise InvalidClientError(description=error.description) from error
                self.verify_claims(token.claims)
                return token.claims

        class BackendGrant(grants.ClientCredentialsGrant):
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
                JWTBearerClientAssertion.CLIENT_AUTH_METHOD
            ]

        server.register_grant(CodeGrant, [CodeChallenge(required=True)])
        server.register_grant(RefreshGrant)
        server.register_grant(BackendGrant)
        server.register_client_auth_method(JWTBearerClientAssertion.CLIENT_AUTH_METHOD, Assertion())
        self._add_bulk(app)

        @app.get("/fhir/.well-known/smart-configuration")
        def smart_configuration() -> Response:
            ehr.discovery_requests += 1
            return jsonify(
                {
                    "authorization_endpoint": f"{ehr.base}/auth/authorize",
                    "token_endpoint": f"{ehr.base}/auth/token",
                    "token_endpoint_auth_methods_supported": ["none"],
                    "grant_types_supported": ["authorization_code", "refresh_token"],
                    "code_challenge_methods_supported": ehr.pkce_methods,
                    "issuer": ehr.fhir_base,
                    "jwks_uri": f"{ehr.base}/auth/jwks",
                    "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient"]
                    + [f"patient/{t}.rs" for t in (*RESOURCE_TYPES, "Medication")],
                    "capabilities": [
                        "launch-ehr",
                        "launch-standalone",
                        "client-public",
                        "context-ehr-patient",
                        "context-standalone-patient",
                        "permission-v2",
                        "sso-openid-connect",
                    ],
                }
            )

        @app.get("/auth/jwks")
        def jwks() -> Response:
            return jsonify(jwk.KeySet([ehr.signing_key]).as_dict(private=False))

        @app.get("/auth/authorize")
        def authorize() -> Any:
            if request.args.get("aud", "").rstrip("/") != ehr.fhir_base:
                return Response("aud is not this FHIR server", status=400)
            if ehr.deny:
                state = request.args.get("state", "")
                return redirect(
                    f"{ehr.client.redirect_uri}?error=access_denied&state={state}", code=302
                )
            launch = request.args.get("launch")
            if launch is not None and launch not in ehr.launches:
                return Response("unknown launch", status=400)
            try:
                grant = server.get_consent_grant(end_user="dr-test")
            except OAuth2Error as error:
                return server.handle_error_response(None, error)
            return server.create_authorization_response(grant=grant, grant_user="dr-test")

        @app.post("/auth/token")
        def issue_token() -> Any:
            return server.create_token_response()

        def _bearer(rtype: str, patient_id: str | None) -> _Token | Response:
            if ehr.fhir_delay:
                time.sleep(ehr.fhir_delay)
            header = request.headers.get("Authorization", "")
            ehr.fhir_requests.append((request.full_path, header))
            token = ehr.tokens.get(header.removeprefix("Bearer ").strip())
            if token is None or token.is_expired() or token.is_revoked():
                return Response(status=401)
            if not _grants(token.scope, rtype) or (patient_id and patient_id != token.patient):
                return Response(status=403)
            return token

        def _searchset(resources: list[dict[str, Any]], offset: int) -> dict[str, Any]:
            page = resources[offset : offset + ehr.page_size]
            bundle: dict[str, Any] = {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(resources),
                "entry": [{"resource": r, "search": {"mode": "match"}} for r in page],
            }
            if offset + ehr.page_size < len(resources):
                query = request.args.to_dict()
                query["_offset"] = str(offset + ehr.page_size)
                qs = "&".join(f"{k}={v}" for k, v in query.items())
                bundle["link"] = [{"relation": "next", "url": f"{request.base_url}?{qs}"}]
            return bundle

        @app.get("/fhir/Patient/<pid>")
        def read_patient(pid: str) -> Any:
            if ehr.fhir_status:
                return Response(status=ehr.fhir_status)
            token = _bearer("Patient", pid)
            if isinstance(token, Response):
                return token
            record = ehr.records.get(pid)
            if record is None:
                return Response(status=404)
            return jsonify(record.patient)

        @app.get("/fhir/<rtype>")
        def search(rtype: str) -> Any:
            if ehr.fhir_status:
                return Response(status=ehr.fhir_status)
            if rtype not in RESOURCE_TYPES[1:]:
                return Response(status=404)
            pid = request.args.get("patient")
            token = _bearer(rtype, pid)
            if isinstance(token, Response):
                return token
            record = ehr.records.get(pid or "")
            found = list(record.resources.get(rtype, [])) if record else []
            codes = request.args.get("code")
            if codes:
                wanted = set(codes.split(","))
                found = [
                    r
                    for r in found
                    if any(
                        f"{c.get('system')}|{c.get('code')}" in wanted
                        for c in r.get("code", {}).get("coding", [])
                    )
                ]
            return jsonify(_searchset(found, int(request.args.get("_offset", "0"))))

        return app
