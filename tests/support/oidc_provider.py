"""A small, real OpenID Connect provider for the single sign-on tests, built from authlib's
server components (Flask): discovery, JWKS, the authorization endpoint (code flow, PKCE S256
required, nonce required) and the token endpoint (client_secret_basic), RS256 ID tokens.

It serves on a real socket (werkzeug, a thread). The authorization endpoint signs in whoever
the test names in ``provider.user`` at once (no login form): the tests are about ldncare's
client, not about the provider's own login. Flags make it misbehave the ways a test needs:
``expired_id_token`` (an ID token that expired an hour ago) and ``wrong_nonce``.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server


@dataclass
class Person:
    sub: str
    preferred_username: str
    groups: list[str]
    name: str = "Test Person"


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "profile", "email", "groups"}
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic" if endpoint == "token" else True

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    person: Person
    made: float = field(default_factory=time.time)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.made)

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None

    def is_expired(self) -> bool:
        return time.time() - self.made > 60


class Provider:
    """The provider and its state; ``issuer`` is its base URL once started."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.redirect_uris: list[str] = []
        self.user: Person | None = None
        self.expired_id_token = False
        self.wrong_nonce = False
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"})
        self.codes: dict[str, Code] = {}
        self.issuer = ""
        self._server: Any = None
        self.app = self._make_app()

    # --- the Flask app ---------------------------------------------------------------------------

    def _make_app(self) -> Flask:
        provider = self
        app = Flask("test-oidc-provider")

        def query_client(client_id: str) -> Client | None:
            if client_id != provider.client_id:
                return None
            return Client(provider.client_id, provider.client_secret, provider.redirect_uris)

        def save_token(token: dict[str, Any], request: Any) -> None:
            return None

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]

            def save_authorization_code(self, code: str, request: Any) -> None:
                data = request.payload.data
                provider.codes[code] = Code(
                    code=code,
                    client_id=request.client.get_client_id(),
                    redirect_uri=data.get("redirect_uri", ""),
                    scope=data.get("scope", ""),
                    nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                    person=request.user,
                )

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                found = provider.codes.get(code)
                return found if found and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: Code) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Code) -> Person:
                return authorization_code.person

        class IdToken(OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, request: Any) -> bool:
                return False

            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider.key

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_encode_header(self, client: Client) -> dict[str, str]:
                return {"alg": "RS256", "kid": "test-key"}

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                now = int(time.time())
                if provider.expired_id_token:
                    return {
                        "iss": provider.issuer,
                        "aud": [client.client_id],
                        "iat": now - 7200,
                        "exp": now - 3600,
                    }
                return {
                    "iss": provider.issuer,
                    "aud": [client.client_id],
                    "iat": now,
                    "exp": now + 300,
                }

            def get_authorization_code_claims(self, authorization_code: Code) -> dict[str, Any]:
                claims: dict[str, Any] = super().get_authorization_code_claims(authorization_code)
                if provider.wrong_nonce:
                    claims["nonce"] = "a-nonce-from-another-login"
                return claims

            def generate_user_info(self, user: Person, scope: str) -> UserInfo:
                info = UserInfo(sub=user.sub, preferred_username=user.preferred_username)
                info["name"] = user.name
                info["groups"] = list(user.groups)
                return info

        server.register_grant(
            CodeGrant, [IdToken(require_nonce=True), CodeChallenge(required=True)]
        )

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            base = provider.issuer
            return jsonify(
                {
                    "issuer": base,
                    "authorization_endpoint": f"{base}/authorize",
                    "token_endpoint": f"{base}/token",
                    "jwks_uri": f"{base}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                    "scopes_supported": ["openid", "profile", "email", "groups"],
                }
            )

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify({"keys": [provider.key.as_dict(private=False)]})

        @app.get("/authorize")
        def authorize() -> Any:
            try:
                grant = server.get_consent_grant(end_user=provider.user)
            except OAuth2Error as error:
                return jsonify(dict(error.get_body())), error.status_code
            return server.create_authorization_response(grant_user=provider.user, grant=grant)

        @app.post("/token")
        def token() -> Any:
            return server.create_token_response()

        return app

    # --- on a real socket ------------------------------------------------------------------------

    def start(self) -> Provider:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
