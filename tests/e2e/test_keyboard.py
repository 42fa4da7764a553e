"""Keyboard only: the main tasks done with Tab, typing and Enter, never a click (WCAG 2.1.1, 2.4.7).

Every stop of the Tab key must land on an element that is on screen and drawn with a visible
focus outline; on the main pages, Tab must reach every control there is.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import DESKTOP, PASSWORD, PHONE

# What the focused element looks like: enough to tell where the keyboard is, and who it is.
FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e);
  const r = e.getBoundingClientRect();
  return {
    key: e.dataset.kbd || null,
    what: e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' "' +
          (e.innerText || e.value || e.getAttribute('aria-label') || '').trim().slice(0, 40) + '"',
    outline: s.outlineStyle, width: parseFloat(s.outlineWidth) || 0,
    shadow: s.boxShadow,
    shown: r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight
           && r.right > 0 && r.left < innerWidth,
  };
}"""
# Every control a keyboard user must be able to reach, numbered in data-kbd.
CONTROLS = """() => {
  const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary,' +
              '[tabindex]:not([tabindex="-1"])';
  const found = [...document.querySelectorAll(sel)]
    .filter(e => !e.disabled && e.checkVisibility({visibilityProperty: true}));
  found.forEach((e, i) => { e.dataset.kbd = String(i); });
  const name = e => (e.innerText || e.getAttribute('aria-label') || '').trim().slice(0, 40);
  return found.map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' "' + name(e) + '"');
}"""


def focus_is_visible(state: dict[str, Any] | None) -> str | None:
    """None when the focused element is on screen with a visible outline, else what is wrong."""
    if state is None:
        return "focus left the page content"
    if not state["shown"]:
        return f"{state['what']} is focused but not on screen"
    ring = state["outline"] != "none" and state["width"] >= 2
    if not ring and state["shadow"] in ("", "none"):
        return f"{state['what']} is focused without a visible outline"
    return None


def tab_to(page: Any, selector: str, limit: int = 120) -> None:
    """Press Tab until the element matching selector has focus; every stop on the way must be
    visibly focused."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        problem = focus_is_visible(page.evaluate(FOCUSED))
        assert problem is None, problem
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} not reached with {limit} presses of Tab")


def submit(page: Any) -> None:
    """Enter on the focused control, and wait for the page it leads to."""
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state()


def walk(page: Any) -> None:
    """Tab from the top through the whole page: every control is reached, each visibly."""
    controls = page.evaluate(CONTROLS)
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); }")
    page.evaluate("() => window.scrollTo(0, 0)")
    reached: set[str] = set()
    previous = None
    # A date input takes three Tab stops (day, month, year), hence the room.
    for _ in range(3 * len(controls) + 5):
        page.keyboard.press("Tab")
        state = page.evaluate(FOCUSED)
        if state is None:
            break  # out of the page: past the last control
        key = state["key"]
        if key is not None and key in reached and key != previous:
            break  # wrapped round to the start
        problem = focus_is_visible(state)
        assert problem is None, f"{page.url}: {problem}"
        if key is not None:
            reached.add(key)
        previous = key
    missed = [c for i, c in enumerate(controls) if str(i) not in reached]
    assert not missed, f"{page.url}: not reachable with Tab: {missed}"


def test_a_clinician_logs_in_creates_a_patient_and_runs_an_assessment_by_keyboard(
    server: str, browser: Any
) -> None:
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    page.goto(f"{server}/login")
    walk(page)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "#username")
    page.keyboard.type("clinician")
    tab_to(page, "#password")
    page.keyboard.type(PASSWORD)
    submit(page)
    assert page.locator("h1").inner_text().startswith("Patients")
    walk(page)

    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "main a[href='/patients/new']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/patients/new")
    walk(page)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "#external_id")
    page.keyboard.type("kbd-1")
    tab_to(page, "#name")
    page.keyboard.type("Karla Keyboard")
    tab_to(page, "#conditions")
    page.keyboard.type("Pudendal neuralgia")
    tab_to(page, "#egfr")
    page.keyboard.type("88")
    tab_to(page, "#patient-form button[type=submit]")
    submit(page)
    assert "Patient stored with plan version 1" in page.content()
    walk(page)

    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "main a[href$='/assess']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/assess")
    walk(page)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "#reason")
    page.keyboard.type("follow-up by keyboard")
    tab_to(page, "#patient-form button[type=submit]")
    submit(page)
    assert "Assessment recorded" in page.content() and "Plan v2" in page.content()

    # The clinician opens the folded diary form with the keyboard and saves a day.
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "#diary-add summary")
    page.keyboard.press("Enter")
    tab_to(page, "#pain_avg")
    page.keyboard.type("4")
    tab_to(page, "#diary-form button[type=submit]")
    submit(page)
    assert page.locator(".banner.ok").count() == 1
    context.close()


def test_a_patient_on_a_phone_adds_a_diary_day_by_keyboard(server: str, browser: Any) -> None:
    """A phone with a keyboard (or a switch device): same Tab order, same visible focus."""
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(f"{server}/login")
    tab_to(page, "#username")
    page.keyboard.type("titrating")
    tab_to(page, "#password")
    page.keyboard.type(PASSWORD)
    submit(page)
    assert "Tonight" in page.content()
    walk(page)

    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "main a[href='/me/diary']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/me/diary")
    walk(page)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "#pain_avg")
    page.keyboard.type("3")
    tab_to(page, "#pain_worst")
    page.keyboard.type("5")
    tab_to(page, "#sitting_minutes")
    page.keyboard.type("40")
    tab_to(page, "#diary-form button[type=submit]")
    submit(page)
    assert "Saved" in page.content()
    assert "40 min" in page.locator("#diary-days").inner_text()
    context.close()


def test_a_control_without_a_focus_outline_is_caught(server: str, browser: Any) -> None:
    """The walk can fail: a page whose stylesheet hides the focus outline does not pass."""
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    page.goto(f"{server}/login")
    page.add_style_tag(content="*:focus, *:focus-visible { outline: none !important; }")
    try:
        walk(page)
    except AssertionError as exc:
        assert "without a visible outline" in str(exc)
    else:
        raise AssertionError("a page with no focus outline passed the keyboard walk")
    context.close()
