"""Request body size limit: a pure ASGI middleware, outside everything else.

A body over the limit is refused with 413 before the app parses it: at once when
``Content-Length`` says so, otherwise as soon as the bytes received pass the limit. The answer
has the shape each client expects: ``{"error": ...}`` under /cds-services, the API's
``{"detail": [...]}`` elsewhere.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ldncare.web.headers import SECURITY_HEADER_BYTES


class _TooLarge(BaseException):
    """Raised by the limited ``receive``. A BaseException on purpose: the frameworks between
    here and the body's reader catch ``Exception`` (FastAPI turns any error while reading a
    body into 400 "There was an error parsing the body"), and this must reach ``BodyLimit``
    to become a 413."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        msg = f"the request body is larger than the limit of {self.max_bytes} bytes"
        path = str(scope.get("path", ""))
        cors: list[tuple[bytes, bytes]] = []
        if path.startswith("/cds-services"):
            payload: object = {"error": msg}
            # A browser-based EHR sees no status at all without them (CDS Hooks 2.0: CORS).
            cors = [(k.lower().encode(), v.encode()) for k, v in _cds_cors().items()]
        else:
            payload = {"detail": [{"loc": ["body"], "msg": msg}]}
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                    # This answer is made outside the middleware that adds them to the rest.
                    *SECURITY_HEADER_BYTES,
                    *cors,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _cds_cors() -> dict[str, str]:
    from ldncare.cdshooks.service import CORS_HEADERS  # the web app's optional CDS part

    return CORS_HEADERS


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
