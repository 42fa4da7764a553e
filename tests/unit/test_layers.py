"""The layers of docs/ARCHITECTURE.md, checked on the code: every module's imports, parsed.

Adapters -> orchestration -> core, never back: the core imports no adapter and does no I/O,
``fhir/`` imports nothing of ``store/``, ``store/`` nothing of ``web/``; SQL lives in ``store/``
only, migrations import no live code, and the web routes reach the store through the service.
An exception is listed here with its reason, or it is a failure.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import ldncare

SRC = Path(ldncare.__file__).parent

#: What each part of ldncare may import of ldncare (module prefixes), as the table in
#: docs/ARCHITECTURE.md says. A part is a package (``core``) or a top-level module (``planning``).
ALLOWED: dict[str, tuple[str, ...]] = {
    "__init__": ("errors",),
    # `python -m ldncare`: the CLI's entry point, nothing more.
    "__main__": ("cli",),
    "errors": (),
    "json_input": (),
    "import_report": (),
    "core": ("core", "errors", "evidence"),
    # Evidence files hold doses and vocabularies, parsed with the core's value types.
    "evidence": ("evidence", "errors", "core.quantity", "core.vocabulary"),
    "planning": ("core", "evidence"),
    "render": ("render", "core", "evidence"),
    "ask": ("ask", "core", "errors", "evidence"),
    "fhir": ("fhir", "core", "errors", "evidence", "import_report"),
    # A patient file may be a FHIR Bundle.
    "patient_file": ("core", "errors", "fhir", "json_input"),
    "store": ("store", "core", "errors", "evidence", "import_report", "json_input"),
    "importing": ("core", "errors", "fhir", "import_report", "patient_file", "store"),
    # Parallel, multi-machine and incremental import: orchestration beside importing.
    "import_parallel": ("errors", "fhir", "import_report", "importing", "store"),
    "cdshooks": (
        "cdshooks",
        "core",
        "errors",
        "evidence",
        "fhir",
        "json_input",
        "planning",
        "store",  # the JWT replay cache, cards shown and feedback (store/cds.py), shared by workers
    ),
    "web": (
        "web",
        "ask",
        "cdshooks",
        "core",
        "errors",
        "evidence",
        "fhir",
        "json_input",
        "patient_file",
        "planning",
        "render",
        "store",
    ),
    "cli": (
        "cli",
        "ask",
        "cdshooks",
        "core",
        "errors",
        "evidence",
        "fhir",
        "import_parallel",
        "importing",
        "json_input",
        "patient_file",
        "planning",
        "render",
        "store",
        "web",
    ),
}

#: Modules the core never imports: adapters' frameworks, databases, files, network, processes.
CORE_FORBIDDEN = frozenset(
    {
        "sqlalchemy", "alembic", "psycopg", "sqlite3", "fastapi", "starlette", "httpx",
        "uvicorn", "jinja2", "typer", "rich", "weasyprint", "fhir", "requests", "urllib",
        "http", "socket", "os", "io", "pathlib", "shutil", "tempfile", "glob", "subprocess",
        "multiprocessing", "asyncio", "yaml",
    }
)  # fmt: skip

#: Outside store/, what may be imported of SQLAlchemy: the engine type and its errors.
SQLALCHEMY_TYPES = frozenset({"sqlalchemy.Engine", "sqlalchemy.engine.Engine", "sqlalchemy.exc"})
#: Modules outside store/ that still hold SQL or a table model, and why.
SQL_OUTSIDE_STORE: dict[str, str] = {}
#: web/ modules that may import ldncare.store (the others, the routes, go through the service).
WEB_STORE_USERS: dict[str, str] = {
    "web/service.py": "the service layer: what the routes do, once, over the repository",
    "web/views.py": "view models of the service layer (diary rows -> core entries)",
    "web/demo.py": "loads the demo data through the repository, like the service",
    "web/dashboard.py": "the dashboard list, a service function over the stored summaries",
    "web/app.py": "the app factory opens the database engine (store.db)",
    "web/auth.py": "the accounts service: sign-in, sessions and the login limiter over store/",
    "web/accounts.py": "the accounts service: the account lifecycle over store/accounts.py",
    "web/sso.py": "the accounts service: single sign-on links provider users to store/ accounts",
    **SQL_OUTSIDE_STORE,
}


@dataclass(frozen=True)
class Import:
    module: str  # the module imported from, absolute (``ldncare.store.models``)
    names: tuple[str, ...]  # the names taken (``from m import a, b``); () for ``import m``
    line: int


def imports_of(path: Path, source: str | None = None) -> Iterator[Import]:
    """Every import of a module, wherever it is (in functions, under TYPE_CHECKING)."""
    tree = ast.parse(source if source is not None else path.read_text(), str(path))
    package = ["ldncare", *path.relative_to(SRC).parent.parts]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield Import(module, tuple(a.name for a in node.names), node.lineno)


def opens_files(path: Path) -> list[int]:
    """Lines that call the builtin ``open``."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open"
    ]


def part_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def modules(part: str | None = None) -> list[Path]:
    found = sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)
    return [p for p in found if part is None or part_of(p) == part]


def ldncare_targets(path: Path, source: str | None = None) -> Iterator[tuple[str, int]]:
    """``(module inside ldncare, line)`` of each ldncare import, names included as modules
    (``from ldncare.store import repository`` imports ``store.repository``)."""
    for imp in imports_of(path, source):
        if imp.module == "ldncare":
            for name in imp.names:
                yield name, imp.line
        elif imp.module.startswith("ldncare."):
            inner = imp.module.removeprefix("ldncare.")
            yield inner, imp.line
            for name in imp.names:
                yield f"{inner}.{name}", imp.line


def _allowed(target: str, prefixes: tuple[str, ...]) -> bool:
    return any(target == p or target.startswith(p + ".") for p in prefixes)


def violations(path: Path, source: str | None = None) -> list[str]:
    part = part_of(path)
    allowed = ALLOWED[part]
    out = []
    for target, line in ldncare_targets(path, source):
        # ``from ldncare.core import quantity`` yields core and core.quantity: judge the module
        # and accept the package when one of its allowed modules is what is taken.
        if _allowed(target, allowed) or any(p.startswith(target + ".") for p in allowed):
            continue
        out.append(f"{path.relative_to(SRC)}:{line} imports ldncare.{target}")
    return out


def test_every_part_of_ldncare_has_its_layer_rule() -> None:
    parts = {part_of(p) for p in modules()}
    assert parts == set(ALLOWED), "a new package or top-level module needs its row in ALLOWED"


def test_no_part_imports_a_layer_above_it() -> None:
    problems = [v for p in modules() for v in violations(p)]
    assert problems == []


def test_the_core_imports_no_adapter_framework_and_does_no_io() -> None:
    problems = []
    for path in modules("core"):
        for imp in imports_of(path):
            if imp.module.split(".")[0] in CORE_FORBIDDEN:
                problems.append(f"{path.relative_to(SRC)}:{imp.line} imports {imp.module}")
        problems += [f"{path.relative_to(SRC)}:{n} calls open()" for n in opens_files(path)]
    assert problems == []


@pytest.mark.parametrize(
    ("part", "forbidden"),
    [
        ("core", ("fhir", "store", "web", "cdshooks", "cli", "render", "ask", "importing",
                  "import_parallel", "planning", "patient_file")),
        ("fhir", ("store", "importing", "import_parallel", "web", "cdshooks", "cli")),
        ("store", ("web", "cli", "cdshooks", "fhir", "importing", "import_parallel")),
        ("evidence", ("store", "web", "cdshooks", "cli", "fhir", "render")),
        ("render", ("store", "web", "cdshooks", "cli", "fhir")),
    ],
)  # fmt: skip
def test_named_boundaries_of_the_issue_hold(part: str, forbidden: tuple[str, ...]) -> None:
    # The same as the table, said the way issue #17 says it, so that a loosened table row
    # cannot quietly let one of these through.
    crossing = [
        f"{p.relative_to(SRC)}:{line} imports ldncare.{t}"
        for p in modules(part)
        for t, line in ldncare_targets(p)
        if t.split(".")[0] in forbidden
    ]
    assert crossing == []


def test_sql_lives_in_the_store() -> None:
    problems = []
    for path in modules():
        rel = str(path.relative_to(SRC))
        if part_of(path) == "store" or rel in SQL_OUTSIDE_STORE:
            continue
        for imp in imports_of(path):
            if imp.module.split(".")[0] != "sqlalchemy":
                continue
            taken = [f"{imp.module}.{n}" for n in imp.names] or [imp.module]
            bad = [
                t for t in taken if t not in SQLALCHEMY_TYPES and imp.module not in SQLALCHEMY_TYPES
            ]
            problems += [f"{rel}:{imp.line} imports {t}" for t in bad]
    assert problems == []


def test_web_routes_reach_the_store_through_the_service() -> None:
    routes = [p for p in modules("web") if str(p.relative_to(SRC)) not in WEB_STORE_USERS]
    assert {"api.py", "pages.py", "ask_page.py"} <= {p.name for p in routes}
    crossing = [
        f"{p.relative_to(SRC)}:{line} imports ldncare.{t}"
        for p in routes
        for t, line in ldncare_targets(p)
        if t.split(".")[0] == "store"
    ]
    assert crossing == []


def test_migrations_import_no_live_code() -> None:
    # A migration must do tomorrow what it did when written, whatever the code becomes.
    versions = sorted((SRC / "store" / "migrations" / "versions").glob("*.py"))
    assert len(versions) >= 6
    live = [
        f"{p.name}:{imp.line} imports {imp.module}"
        for p in versions
        for imp in imports_of(p)
        if imp.module.split(".")[0] == "ldncare"
    ]
    assert live == []


def test_listed_exceptions_are_still_needed() -> None:
    # An exception whose module no longer breaks the rule is removed from the list.
    for rel in SQL_OUTSIDE_STORE:
        path = SRC / rel
        if not path.exists():
            continue
        assert any(i.module.split(".")[0] == "sqlalchemy" for i in imports_of(path)), rel
    for rel in WEB_STORE_USERS:
        path = SRC / rel
        if path.exists():
            assert any(t.split(".")[0] == "store" for t, _ in ldncare_targets(path)), rel


# --- the checker itself finds what it is meant to find ---------------------------------------


@pytest.mark.parametrize(
    ("where", "source", "expected"),
    [
        ("core/x.py", "from ldncare.store import repository\n", "ldncare.store"),
        ("core/x.py", "def f():\n    from ldncare.web.app import create_app\n", "ldncare.web"),
        ("fhir/x.py", "from ..store.models import PatientRow\n", "ldncare.store.models"),
        ("fhir/x.py", "import ldncare.store.bulk\n", "ldncare.store.bulk"),
        ("store/x.py", "from ldncare import web\n", "ldncare.web"),
        ("evidence/x.py", "from ldncare.core.plan import build_plan\n", "ldncare.core.plan"),
    ],
)
def test_the_checker_sees_a_crossing_in_any_import_form(
    where: str, source: str, expected: str
) -> None:
    found = violations(SRC / where, source)
    assert found and expected in found[0]


def test_the_checker_accepts_what_the_table_allows() -> None:
    source = "from ldncare.core import quantity\nfrom ldncare.errors import InvalidInput\n"
    assert violations(SRC / "evidence" / "x.py", source) == []
