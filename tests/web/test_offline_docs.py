"""The API docs (/docs) work on a closed clinic network: every asset the page loads is served by
ldncare itself, the page names no other host, and its policy allows no other host."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from tests.web.conftest import World

# Attributes that make a browser fetch something, and CSS url(...) references.
FETCHED = re.compile(rb"""(?:src|href)\s*=\s*["']([^"']+)["']""")
CSS_URL = re.compile(rb"""url\(\s*["']?([^"')]+)["']?\s*\)""")


def _external(urls: list[bytes]) -> list[bytes]:
    return [u for u in urls if urlsplit(u.decode()).netloc or u.startswith(b"//")]


def test_docs_page_names_no_other_host_and_every_asset_it_loads_is_served(world: World) -> None:
    page = world.client.get("/docs")
    assert page.status_code == 200
    assert b"SwaggerUIBundle" in page.content
    assert b"cdn." not in page.content and b"jsdelivr" not in page.content
    assets = FETCHED.findall(page.content)
    assert _external(assets) == []
    # The script, the stylesheet and the favicon: each served here, with the right type.
    kinds = {b".js": "javascript", b".css": "text/css", b".ico": "image/"}
    assert {a[a.rfind(b".") :] for a in assets} >= set(kinds)
    for asset in assets:
        served = world.client.get(asset.decode())
        assert served.status_code == 200, asset
        assert kinds[asset[asset.rfind(b".") :]] in served.headers["content-type"]
        assert len(served.content) > 100
    css = world.client.get("/static/apidocs/swagger-ui.css").content
    assert _external([u for u in CSS_URL.findall(css) if not u.startswith(b"data:")]) == []
    # The page asks for the schema it documents, on this host.
    assert b"url: '/openapi.json'" in page.content
    assert world.client.get("/openapi.json").json()["info"]["title"] == "ldncare"


def test_docs_policy_allows_this_host_and_only_the_pages_own_inline_script(world: World) -> None:
    page = world.client.get("/docs")
    csp = page.headers["content-security-policy"]
    assert "http" not in csp and "unsafe-inline" not in csp
    (script,) = re.findall(rb"<script>(.*?)</script>", page.content, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}'" in csp
    # Every other page keeps the strict policy: no inline script at all.
    other = world.client.get("/login").headers["content-security-policy"]
    assert "sha256-" not in other and "script-src 'self';" in other


def test_favicon_is_served_and_every_page_points_at_it(world: World) -> None:
    icon = world.client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert icon.content[22:30] == b"\x89PNG\r\n\x1a\n"  # holding a PNG image
    assert "no-store" not in icon.headers["cache-control"]
    assert b'<link rel="icon" href="/favicon.ico">' in world.client.get("/login").content


def test_swagger_oauth2_redirect_page_is_served_locally(world: World) -> None:
    page = world.client.get("/docs/oauth2-redirect")
    assert page.status_code == 200
    assert _external(FETCHED.findall(page.content)) == []
