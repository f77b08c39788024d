"""The console in a real browser (Debian's chromium through Playwright), against one `nrm up`:
people sign in (password, then a TOTP code from pyotp) and walk the demo as they would; plus
the console's own defences (CSRF, CSP, no-store, the same "not found" for another agency's
referral as for none). `NRM_SCREENSHOTS_DIR` set (`make screenshots`): the walk saves the
inbox, a referral and the audit timeline there."""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from services.common.broker import free_port
from tests.e2e.conftest import ROOT, Exchange, start_exchange
from tests.e2e.test_people import people_of
from tests.support import wait_for

# The stack's start (in the first test's setup) and several sign-ins on a busy 2-core machine.
pytestmark = [pytest.mark.xdist_group("e2e-console"), pytest.mark.timeout(300)]

CHROMIUM = "/usr/bin/chromium"
TIMEOUT = 30_000  # ms: what a page may take to show what the stack has done
NARRATIVE = "Promised farm work in the south; documents held by the employer."


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    """One stack for the module (SQLite: the console has no database of its own; the
    services' PostgreSQL paths are tested by the other end-to-end modules)."""
    yield from start_exchange("sqlite", tmp_path_factory.mktemp("console"), {})


def shots() -> Path | None:
    folder = os.environ.get("NRM_SCREENSHOTS_DIR")
    return Path(folder) if folder else None


OUTSIDE: list[str] = []  # requests the console's pages made anywhere but the exchange


async def sign_in(
    browser: Any,
    exchange: Exchange,
    username: str,
    next_path: str,
    console: str = "",
    lands: str = "",
) -> Any:
    """A new browser context for the person, signed in through identity's pages; the page.
    `console`: a console served apart from the stack (`nrm serve console`), at this address.
    `lands`: where the person lands when `next_path` is empty (their role's landing page)."""
    person = people_of(exchange)[username]
    base = console or exchange.base_url
    context = await browser.new_context(base_url=base, viewport={"width": 1200, "height": 800})
    context.set_default_timeout(TIMEOUT)
    page = await context.new_page()
    page.on(
        "request",
        lambda r: None if r.url.startswith((base, exchange.base_url)) else OUTSIDE.append(r.url),
    )
    await page.goto(f"/console/login?lang=en&next={next_path}")
    await page.get_by_label("Username", exact=True).fill(username)
    await page.get_by_label("Password", exact=True).fill(person["password"])
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_label("One-time code", exact=True).fill(await fresh_code(username, person))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}{next_path or lands}")
    return page


LAST_STEP: dict[str, int] = {}


async def fresh_code(username: str, person: dict[str, Any]) -> str:
    """A one-time code newer than the last this person used: identity takes the current or the
    next 30 s step's code, each step once, and tests sign the same person in more than once
    within 30 s. When both are spent, wait for the clock to reach the next step."""
    wanted = LAST_STEP.get(username, -1) + 1
    await wait_for(lambda: _reached(wanted - 1), timeout=65)
    step = max(wanted, int(time.time() // 30))
    LAST_STEP[username] = step
    return str(pyotp.TOTP(person["totp_secret"]).at(step * 30))


async def _reached(step: int) -> bool:
    """The next step's code is accepted one step early: `step` is at most one ahead."""
    return int(time.time() // 30) >= step


# WCAG 2.1 AA basics, measured in the page: every form control has a label (1.3.1, 4.1.2), and
# every piece of visible text has a contrast of at least 4.5:1 (3:1 when large) against the
# background it is drawn on (1.4.3), from the colours the browser computed from console.css.
A11Y_SCRIPT = """() => {
  const unlabelled = [];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby");
    if (!named) unlabelled.push(el.name || el.id || el.outerHTML.slice(0, 60));
  }
  const rgb = (c) => (c.match(/[0-9.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll("body *")) {
    const text = Array.from(el.childNodes).filter((n) => n.nodeType === 3 && n.textContent.trim());
    if (!text.length || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || el.closest(".visually-hidden, .skip")) continue;
    const a = lum(rgb(style.color).slice(0, 3)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const said = text[0].textContent.trim().slice(0, 30);
    if (ratio < needed) low.push(`${el.tagName} "${said}" ${ratio.toFixed(2)}`);
  }
  return {unlabelled, low};
}"""


# The form's controls in document order, and which control has the focus (and whether it
# shows: an outline or a ring).
CONTROLS_SCRIPT = """() => Array.from(document.querySelectorAll(
  "main form input:not([type=hidden]), main form select, main form textarea, main form button"
)).map((e) => e.id || `${e.name}=${e.value}`)"""
FOCUSED_SCRIPT = """() => {
  const e = document.activeElement, s = getComputedStyle(e);
  if (e === document.body) return ["", false];
  const ring = (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2)
    || s.boxShadow !== "none";
  return [e.id || `${e.name}=${e.value}`, ring];
}"""


async def accessible(page: Any) -> None:
    """The page's controls are labelled and its text has the contrast WCAG 2.1 AA asks."""
    found = await page.evaluate(A11Y_SCRIPT)
    assert found == {"unlabelled": [], "low": []}, (page.url, found)


async def no_horizontal_scroll(page: Any, width: int = 375) -> None:
    """A phone's width: the page fits, nothing to scroll sideways."""
    await page.set_viewport_size({"width": width, "height": 740})
    scroll = await page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll <= width, (page.url, scroll)


async def test_the_demo_as_people_walk_it(exchange: Exchange) -> None:
    from playwright.async_api import async_playwright, expect  # .ci/run installs chromium

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM)
        try:
            referrer = await sign_in(
                browser, exchange, "labour-insp.referrer", "/console/referrals/new"
            )
            shelter = await sign_in(browser, exchange, "ngo-south.caseworker", "/console/inbox")
            await expect(shelter.get_by_role("heading", name="Inbox")).to_be_visible()

            # The referrer's form: the API's own validation, shown at the field (no region).
            await expect(referrer.get_by_role("heading", name="New referral")).to_be_visible()
            await accessible(referrer)
            await accessible(shelter)
            # The keyboard alone: Tab walks every control of the form in reading order, and
            # each one shows that it has the focus.
            order = await referrer.evaluate(CONTROLS_SCRIPT)
            await referrer.locator("#f-external_ref").focus()
            walked = [await referrer.evaluate(FOCUSED_SCRIPT)]
            for _ in range(4 * len(order)):  # a date's day, month and year take a Tab each
                await referrer.keyboard.press("Tab")
                now = await referrer.evaluate(FOCUSED_SCRIPT)
                if now[0] == "" or len(walked) == len(order):
                    break
                if now[0] != walked[-1][0]:
                    walked.append(now)
            assert [w[0] for w in walked] == order
            assert [w[0] for w in walked if not w[1]] == []  # a visible focus ring on each
            assert {"f-victim-safety-safe_times", "f-consent-guardian_appointment"} <= set(order)
            await referrer.get_by_label("labour", exact=True).check()
            await referrer.get_by_label("Age", exact=True).fill("31")
            await referrer.get_by_label("Sex", exact=True).select_option("male")
            await referrer.get_by_label("Citizenship (ISO 3166-1)", exact=True).fill("UZ")
            await referrer.get_by_label("Languages (comma-separated)", exact=True).fill("uz, ru")
            await referrer.get_by_label("shelter", exact=True).check()
            await referrer.get_by_label("Full name", exact=True).fill("Bakhtiyor Example")
            await referrer.get_by_label("Phone", exact=True).fill("+77010000001")
            await referrer.get_by_label("Safe to contact", exact=True).check()
            await referrer.get_by_label("Consents to support services", exact=True).check()
            await referrer.get_by_label("Narrative", exact=True).fill(NARRATIVE)
            await referrer.get_by_role("button", name="Submit referral").click()
            region = referrer.get_by_label("Region (ISO 3166-2)", exact=True)
            await expect(region).to_have_attribute("aria-invalid", "true")
            await expect(referrer.locator("#f-region-error")).to_have_text(re.compile(r"\S"))
            # What was typed is kept; the region added, it goes through.
            await expect(referrer.get_by_label("Full name", exact=True)).to_have_value(
                "Bakhtiyor Example"
            )
            await region.fill("KZ-79")
            await referrer.get_by_role("button", name="Submit referral").click()
            reference = await referrer.locator("#reference").inner_text()
            assert re.fullmatch(r"NRM-\d{4}-\d{6}", reference), reference
            # The confirmation is a page of its own (post/redirect/get): reloading it shows
            # the same reference and submits nothing again.
            assert referrer.url.endswith("/submitted"), referrer.url
            await referrer.reload()
            await expect(referrer.locator("#reference")).to_have_text(reference)
            await referrer.get_by_role("link", name=re.compile(reference)).click()
            referral_url = referrer.url
            await expect(referrer.locator("#disclosure")).to_have_text("full")

            # The shelter's open inbox shows it without a reload.
            link = shelter.get_by_role("link", name=reference)
            await expect(link).to_be_visible()
            if folder := shots():
                folder.mkdir(parents=True, exist_ok=True)
                await shelter.screenshot(path=str(folder / "console-inbox.png"), full_page=True)
            await link.click()
            await expect(shelter.locator("#disclosure")).to_have_text("support")
            await expect(shelter.locator("#identity")).to_contain_text("Bakhtiyor Example")
            await expect(shelter.get_by_text(NARRATIVE)).to_have_count(0)
            assert shelter.url == referral_url  # the same address for everyone entitled
            if folder := shots():
                await shelter.screenshot(path=str(folder / "console-referral.png"), full_page=True)
            await accessible(shelter)
            await no_horizontal_scroll(shelter)  # a phone: the referral page fits
            await shelter.get_by_role("button", name="Acknowledge").click()
            await expect(shelter.locator("#delivery-status")).to_have_text("acknowledged")
            await expect(shelter.get_by_role("button", name="Accept")).to_be_visible()
            await expect(shelter.get_by_role("button", name="Acknowledge")).to_have_count(0)

            # The police (no consent to law enforcement): the anonymous view.
            police = await sign_in(browser, exchange, "mvd-ctu.caseworker", "/console/inbox")
            await police.get_by_role("link", name=reference).click()
            await expect(police.locator("#disclosure")).to_have_text("anonymous")
            await expect(police.get_by_text("Bakhtiyor Example")).to_have_count(0)
            await expect(police.get_by_text(NARRATIVE)).to_have_count(0)

            # The submitter sees each recipient's status (the shelter's acknowledgement
            # arrives over the bus: reload until it has).
            async def recipient_status(agency: str) -> str:
                row = referrer.locator(f"tr[data-agency='{agency}'] td").nth(1)
                return str(await row.inner_text())

            for _ in range(60):
                await referrer.reload()
                if await recipient_status("ngo-south") == "acknowledged":
                    break
                await referrer.wait_for_timeout(500)
            assert await recipient_status("ngo-south") == "acknowledged"
            assert await recipient_status("mvd-ctu") in ("pending", "notified")

            # The auditor finds it by its reference: the timeline names each person.
            auditor = await sign_in(browser, exchange, "auditor", "/console/audit")
            names = ("labour-insp.referrer", "ngo-south.caseworker", "mvd-ctu.caseworker")
            for _ in range(60):
                await auditor.goto("/console/audit")
                await auditor.get_by_label("Reference", exact=True).fill(reference)
                await auditor.get_by_role("button", name="Search").click()
                cells = await auditor.locator("td").all_inner_texts()
                if all(name in cells for name in names):
                    break
                await auditor.wait_for_timeout(500)
            await expect(
                auditor.get_by_role("heading", name=f"Timeline {reference}")
            ).to_be_visible()
            cells = await auditor.locator("td").all_inner_texts()
            assert all(name in cells for name in names), cells
            assert "Bakhtiyor Example" not in await auditor.content()
            # Who read what: the people who opened the referral, and at which level.
            readers = auditor.locator("#access tr", has_text="ngo-south.caseworker")
            await expect(readers.first).to_contain_text("support")
            await accessible(auditor)
            if folder := shots():
                await auditor.screenshot(path=str(folder / "console-audit.png"), full_page=True)
            # The timeline as CSV, and a search by agency and type, exported too.
            csv_link = auditor.get_by_role("link", name="Export CSV")
            export = await auditor.request.get(str(await csv_link.get_attribute("href")))
            assert export.status == 200
            assert export.headers["content-disposition"].startswith("attachment;")
            lines = (await export.text()).splitlines()
            assert (
                lines[0]
                == "sequence,time,type,outcome,agency,actor,action,disclosure,rule,since_start_ms"
            )
            assert any(",referral.acknowledged,," in line for line in lines), lines
            await auditor.goto("/console/audit")
            await auditor.get_by_label("Agency", exact=True).fill("ngo-south")
            await auditor.get_by_label("Event type", exact=True).select_option(
                "referral.acknowledged"
            )
            await auditor.get_by_role("button", name="Search").click()
            await expect(auditor.locator("#events tbody tr").first).to_contain_text(
                "ngo-south.caseworker"
            )
            found = await auditor.locator("#events tbody tr").all_inner_texts()
            assert all("referral.acknowledged" in row for row in found), found
            csv_link = auditor.get_by_role("link", name="Export CSV")
            export = await auditor.request.get(str(await csv_link.get_attribute("href")))
            rows = (await export.text()).splitlines()
            assert rows[0] == "sequence,time,type,outcome,agency,actor,subject,action"
            assert len(rows) == len(found) + 1
            await auditor.goto("/console/audit")
            await auditor.get_by_role("button", name="Verify log").click()
            await expect(auditor.locator("#verify-result")).to_contain_text("Log verified")

            await shelter.goto("/console/inbox")
            await no_horizontal_scroll(shelter)  # the inbox on a phone
            # Signing out ends the session at identity too: the inbox asks for a password.
            await shelter.get_by_role("button", name="Sign out").click()
            await shelter.wait_for_url(f"{exchange.base_url}/console/")
            await shelter.goto("/console/inbox")
            await expect(shelter.get_by_label("Password", exact=True)).to_be_visible()

            assert OUTSIDE == []  # no CDN, nothing from elsewhere
        finally:
            await browser.close()


async def test_tip_form_csrf_csp_no_store_and_not_found(exchange: Exchange) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM)
        try:
            # A tip through the console's form (no victim, no consent: not asked).
            hotline = await sign_in(browser, exchange, "ngo-north.referrer", "/console/tips/new")
            await expect(hotline.get_by_label("Full name", exact=True)).to_have_count(0)
            await hotline.get_by_label("Region (ISO 3166-2)", exact=True).fill("KZ-39")
            await hotline.get_by_label("Urgency", exact=True).select_option("high")
            await hotline.get_by_label("sexual", exact=True).check()
            await hotline.get_by_label("Source", exact=True).select_option("hotline")
            await hotline.get_by_label("Narrative", exact=True).fill(
                "Caller reports a flat used to hold workers."
            )
            await hotline.get_by_role("button", name="Submit tip").click()
            reference = await hotline.locator("#reference").inner_text()
            await hotline.get_by_role("link", name=re.compile(reference)).click()
            tip = {"reference": reference, "id": hotline.url.rsplit("/", 1)[1]}
            await expect(hotline.locator("#disclosure")).to_have_text("full")

            police = await sign_in(browser, exchange, "mvd-ctu.supervisor", "/console/inbox")
            link = police.get_by_role("link", name=tip["reference"])
            await expect(link).to_be_visible()
            response = await police.goto(f"/console/referrals/{tip['id']}")
            assert response is not None and response.status == 200
            headers = await response.all_headers()
            assert headers["cache-control"] == "no-store"
            csp = headers["content-security-policy"]
            assert "script-src 'self';" in csp and "default-src 'none'" in csp
            assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
            cookie = next(c for c in await police.context.cookies() if c["name"] == "nrm_console")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            await expect(police.locator("#disclosure")).to_have_text("full")

            # A form posted without the session's CSRF token, or with another: refused, and
            # nothing done.
            delivery = await police.locator("form[action*='/acknowledge']").get_attribute("action")
            assert delivery is not None
            for form in ({"referral": tip["id"]}, {"referral": tip["id"], "csrf": "x" * 43}):
                refused = await police.request.post(delivery, form=form, max_redirects=0)
                assert refused.status == 403
            # With the token but without a field the page always sends: a page saying which,
            # not the framework's JSON.
            csrf = await police.locator("input[name=csrf]").first.get_attribute("value")
            assert csrf is not None
            bad = await police.request.post(delivery, form={"csrf": csrf}, max_redirects=0)
            assert bad.status == 422 and bad.headers["content-type"].startswith("text/html")
            assert "Form not accepted" in await bad.text() and "referral" in await bad.text()
            await police.reload()
            await expect(police.locator("#delivery-status")).to_have_text("notified")

            # Declined with a reason: escalated to the coordinator, on its overview.
            await police.get_by_role("button", name="Acknowledge").click()
            await expect(police.locator("#delivery-status")).to_have_text("acknowledged")
            await police.get_by_label("Reason", exact=True).fill("Outside our region's unit")
            await police.get_by_role("button", name="Decline").click()
            # The router may escalate the declined delivery before the redirected page loads.
            await expect(police.locator("#delivery-status")).to_have_text(
                re.compile(r"^(declined|escalated)$")
            )
            coordinator = await sign_in(
                browser, exchange, "nrm-coordinator.supervisor", "/console/overview"
            )
            escalated = coordinator.locator("#escalations").get_by_role("link", name=reference)
            for _ in range(60):
                if await escalated.count():
                    break
                await coordinator.wait_for_timeout(500)
                await coordinator.reload()
            await expect(escalated).to_be_visible()
            await expect(coordinator.locator("#unmatched").get_by_role("link")).to_have_count(0)
            # Overdue deliveries at every agency (none is hours late yet: notify's own test
            # has one); the police's supervisor has no such view.
            await expect(
                coordinator.get_by_role("heading", name="Overdue at every agency (0)")
            ).to_be_visible()
            await police.goto("/console/overview")
            await expect(police.get_by_text("Overdue at every agency")).to_have_count(0)

            # Another agency's caseworker: the same "not found" as for no referral at all.
            other = await sign_in(browser, exchange, "ngo-south.caseworker", "/console/inbox")
            theirs = await other.goto(f"/console/referrals/{tip['id']}")
            assert theirs is not None and theirs.status == 404
            seen = await other.locator("main").inner_html()
            none = await other.goto(f"/console/referrals/{uuid.uuid4()}")
            assert none is not None and none.status == 404
            assert await other.locator("main").inner_html() == seen
            assert "Not found" in seen and tip["reference"] not in seen
            # In Russian (the person's choice), back on the same page.
            await other.goto("/console/lang/ru?next=/console/inbox")
            await expect(other.get_by_role("heading", name="Входящие")).to_be_visible()
            assert other.url == f"{exchange.base_url}/console/inbox"
            nowhere = await other.goto("/console/no/such/page")
            assert nowhere is not None and nowhere.status == 404
            assert "Не найдено" in await other.locator("main").inner_html()  # noqa: RUF001
        finally:
            await browser.close()


async def test_the_competent_authority_decides_on_the_referral_page(exchange: Exchange) -> None:
    """The police's supervisor (the example's competent authority) sees the identification
    clocks and records reasonable grounds with the form; a negative conclusive decision inside
    the reflection period is refused, and the page says why."""
    import httpx
    from playwright.async_api import async_playwright, expect

    from tests.support import wait_for
    from tests.unit.test_contracts import REFERRAL_EXAMPLE

    submitter = exchange.headers("labour-insp")
    async with httpx.AsyncClient(base_url=exchange.base_url, headers=submitter) as api:
        r = await api.post(
            "/v1/referrals", content=REFERRAL_EXAMPLE, headers={"content-type": "application/json"}
        )
        assert r.status_code == 201, r.text
        rid, reference = r.json()["id"], r.json()["reference"]

        async def clocks_known() -> bool:
            status = await api.get(f"/v1/referrals/{rid}/status")
            return status.json().get("identification") is not None

        await wait_for(clocks_known, timeout=60)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await sign_in(
                browser, exchange, "mvd-ctu.supervisor", f"/console/referrals/{rid}"
            )
            await expect(page.locator("#identification-status")).to_have_text("potential")
            await expect(page.locator("#reflection-ends")).to_have_text("—")
            await page.get_by_label("Decision", exact=True).select_option("reasonable_grounds")
            await page.get_by_label("Basis", exact=True).select_option("interview")
            await page.get_by_role("button", name="Record decision").click()
            await expect(page.locator("#identification-status")).to_have_text("reasonable_grounds")
            await expect(page.locator("#reflection-ends")).not_to_have_text("—")
            await page.get_by_label("Decision", exact=True).select_option("not_confirmed")
            await page.get_by_role("button", name="Record decision").click()
            await expect(page.get_by_role("alert")).to_contain_text("reflection period runs until")
            await expect(page.locator("#identification-status")).to_have_text("reasonable_grounds")
            # The running clock on the overviews: the coordinator's (every authority's) and the
            # authority's own.
            for who, overview in (
                ("nrm-coordinator.supervisor", None),
                ("mvd-ctu.supervisor", page),
            ):
                overview = overview or await sign_in(browser, exchange, who, "/console/overview")
                await overview.goto("/console/overview")
                row = overview.locator(f"#clocks tr[data-referral='{rid}']")
                # A link for the authority only: the coordinator is no recipient of the referral
                # (its page would be a 404).
                await expect(row.locator("td").nth(0)).to_have_text(reference)
                await expect(row.get_by_role("link")).to_have_count(
                    1 if who.startswith("mvd-ctu") else 0
                )
                await expect(row.locator("td").nth(1)).to_have_text("mvd-ctu")
                await expect(row.locator("td").nth(2)).to_have_text("Reasonable grounds")
        finally:
            await browser.close()


async def test_erasure_requested_approved_and_acknowledged_in_the_browser(
    exchange: Exchange,
) -> None:
    """Issue 23 through the console: the coordinator's supervisor asks for an erasure on the
    referral page; the DPO lands on the erasure page, reads the subject-access document and
    approves; the police's inbox shows the erased item until it acknowledges it, and the
    referral's link says it was erased."""
    import json

    from playwright.async_api import async_playwright, expect

    from tests.unit.test_contracts import REFERRAL_EXAMPLE

    body = json.loads(REFERRAL_EXAMPLE)
    body["region"] = "KZ-15"  # no shelter covers it: the coordinator receives it (and police)
    async with httpx.AsyncClient(base_url=exchange.base_url) as api:
        r = await api.post("/v1/referrals", json=body, headers=exchange.headers("labour-insp"))
        assert r.status_code == 201, r.text
        rid, reference = r.json()["id"], r.json()["reference"]

        async def delivered() -> bool:
            for agency in ("nrm-coordinator", "mvd-ctu"):
                inbox = await api.get(
                    "/v1/inbox", params={"referral": rid}, headers=exchange.headers(agency)
                )
                if not inbox.json()["items"]:
                    return False
            return True

        await wait_for(delivered, timeout=60)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM)
        try:
            coordinator = await sign_in(
                browser, exchange, "nrm-coordinator.supervisor", f"/console/referrals/{rid}"
            )
            await expect(coordinator.locator("#holds")).to_have_text("No legal hold stands.")
            await coordinator.locator("#erasure-basis").select_option("victim_request")
            await coordinator.get_by_role("button", name="Request erasure").click()
            await expect(coordinator.locator("#pending-erasure")).to_contain_text(
                "The victim's request"
            )

            # The DPO's landing page: the request, no link to the referral itself.
            dpo = await sign_in(browser, exchange, "dpo", "", lands="/console/erasure")
            row = dpo.locator(f"#pending tr[data-referral='{rid}']")
            await expect(row).to_contain_text(reference)
            await expect(row).to_contain_text("The victim's request")
            await expect(dpo.get_by_role("link", name=reference, exact=True)).to_have_count(0)
            await accessible(dpo)
            await row.get_by_role("link", name=re.compile("Subject access document")).click()
            await expect(
                dpo.get_by_role("heading", name=f"Subject access: referral {reference}")
            ).to_be_visible()
            await expect(dpo.locator("#data-held")).to_contain_text("Aigerim Example")
            download = await dpo.request.get(f"/console/erasure/{rid}/subject-access.md")
            assert download.status == 200
            assert download.headers["content-disposition"].startswith("attachment;")
            assert "| Victim > identity > full name | Aigerim Example |" in await download.text()
            await dpo.goto("/console/erasure")
            # Irreversible: not without ticking the confirmation.
            await row.get_by_label("I understand this cannot be undone").check()
            await row.get_by_role("button", name="Approve erasure").click()
            await expect(dpo.get_by_role("status")).to_have_text(
                f"The referral {reference} was erased."
            )
            await expect(dpo.locator(f"#pending tr[data-referral='{rid}']")).to_have_count(0)

            # The police's inbox: the erased item and its one action (notify learns of the
            # erasure over the bus: reload until it has).
            police = await sign_in(browser, exchange, "mvd-ctu.caseworker", "/console/inbox")
            item = police.locator("#inbox-rows tr", has_text=reference)
            for _ in range(60):
                if "Erased" in await item.inner_text():
                    break
                await police.wait_for_timeout(500)
                await police.reload()
            await expect(item.locator("td").nth(1)).to_have_text("Erased")
            assert "None" not in await police.locator("#inbox-rows").inner_text()
            await item.get_by_role("button", name=re.compile("Acknowledge erasure")).click()
            await expect(item).to_contain_text("Erasure acknowledged")
            await item.get_by_role("link", name=reference).click()
            await expect(
                police.get_by_role("heading", name=f"Referral {reference} erased")
            ).to_be_visible()
            await expect(police.locator("#erasure-acknowledged")).not_to_have_text("no")
            await expect(police.get_by_text("Aigerim Example")).to_have_count(0)
        finally:
            await browser.close()


async def test_administration_and_a_console_served_alone(
    exchange: Exchange, tmp_path: Path
) -> None:
    """The admin's pages over identity's, notify's and router's APIs; then `nrm serve console`
    as its own process (its own OpenID client) signing a caseworker in."""
    from playwright.async_api import async_playwright, expect

    port = free_port()
    alone = f"http://127.0.0.1:{port}"
    async with exchange.client() as c:
        r = await c.post(
            "/v1/admin/clients",
            json={
                "client_id": "console-alone",
                "agency": "nrm-coordinator",
                "redirect_uris": [f"{alone}/console/callback"],
                "post_logout_redirect_uris": [f"{alone}/console/"],
            },
            headers=exchange.headers("admin"),
        )
        assert r.status_code == 201, r.text
        secret = r.json()["client_secret"]
    env = {
        **os.environ,
        "NRM_DATA_DIR": str(tmp_path),
        "NRM_PORT": str(port),
        "NRM_AUTH_ISSUER": exchange.base_url,
        "NRM_CONSOLE_PUBLIC_URL": alone,
        "NRM_CONSOLE_CLIENT_ID": "console-alone",
        "NRM_CONSOLE_CLIENT_SECRET": secret,
    }
    env.pop("NRM_KAFKA_BOOTSTRAP", None)  # the console needs neither broker nor database
    with (tmp_path / "console.log").open("wb") as log:
        # Popen, as the faults' cluster does: the process is stopped in `finally` below.
        console = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "services.cli", "serve", "console"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM)
        try:
            admin = await sign_in(browser, exchange, "admin", "/console/admin/agencies")
            await expect(admin.get_by_role("heading", name="Agencies")).to_be_visible()
            await accessible(admin)
            # A new agency, disabled and enabled again.
            await admin.get_by_label("Id", exact=True).fill("ngo-east")
            await admin.get_by_label("Name", exact=True).fill("Shelter East")
            await admin.get_by_label("Type", exact=True).select_option("other")
            await admin.get_by_label("Regions (ISO 3166-2, comma-separated)").fill("KZ-63")
            await admin.get_by_role("button", name="Create").click()
            await expect(admin.locator("#flash")).to_have_text("ngo-east: created")
            await admin.get_by_role("button", name="Disable ngo-east").click()
            row = admin.locator("#agencies tr[data-id='ngo-east']")
            await expect(row).to_contain_text("disabled")
            await admin.get_by_role("button", name="Enable ngo-east").click()
            await expect(row).to_contain_text("enabled")

            # A person: created with a generated password (shown once), then disabled.
            await admin.get_by_role("link", name="People").first.click()
            await admin.get_by_label("Username", exact=True).fill("ngo-east.caseworker")
            await admin.get_by_label("Agency", exact=True).fill("ngo-east")
            await admin.get_by_label("caseworker", exact=True).check()
            await admin.get_by_role("button", name="Create").click()
            await expect(admin.locator("#flash")).to_contain_text(
                "ngo-east.caseworker: created, password (shown once): "
            )
            await admin.get_by_role("button", name="Disable ngo-east.caseworker").click()
            await expect(
                admin.locator("#people tr[data-id='ngo-east.caseworker']")
            ).to_contain_text("disabled")
            # Identity's refusal is said on the page: a person needs a role.
            await admin.get_by_label("Username", exact=True).fill("nobody")
            await admin.get_by_label("Agency", exact=True).fill("ngo-east")
            await admin.get_by_role("button", name="Create").click()
            await expect(admin.locator("#flash")).to_have_attribute("role", "alert")

            # E-mail addresses for an agency, through notify (which knows only the agencies
            # of the configuration: a new one is refused, and the page says why).
            await admin.get_by_role("link", name="Webhooks and e-mail").click()
            await admin.get_by_role("button", name="Save e-mail ngo-east").click()
            await expect(admin.locator("#flash")).to_have_text("No such agency.")
            await admin.get_by_label("E-mail addresses (comma-separated) (ngo-south)").fill(
                "duty@ngo-south.example"
            )
            await admin.get_by_label("Language (ngo-south)").select_option("ru")
            await admin.get_by_role("button", name="Save e-mail ngo-south").click()
            await expect(admin.locator("#flash")).to_have_text("ngo-south: e-mail addresses set")
            await expect(admin.locator("section[data-agency='ngo-south']")).to_contain_text(
                "duty@ngo-south.example (ru)"
            )

            # The policy in force, and who would get a draft referral, and why.
            await admin.get_by_role("link", name="Routing policy").click()
            await expect(admin.locator("#policy-version")).to_contain_text("sha256:")
            await expect(admin.locator("#rules tbody tr").first).to_be_visible()
            # The example's identification section (DESIGN.md): the police decide within 5
            # days, a 30-day reflection period, overdue decisions to the coordinator.
            clocks = admin.locator("#policy-identification")
            await expect(clocks).to_contain_text("mvd-ctu")
            await expect(clocks).to_contain_text("5 days")
            await expect(clocks).to_contain_text("30 days")
            await expect(clocks).to_contain_text("nrm-coordinator")
            await admin.get_by_role("link", name="Explain routing").click()
            await admin.get_by_label("Submitted by (agency id)").fill("labour-insp")
            await admin.get_by_label("Region (ISO 3166-2)").fill("KZ-39")
            await admin.get_by_label("labour", exact=True).check()
            await admin.get_by_label("Consents to support services").check()
            await admin.get_by_role("button", name="Explain").click()
            explained = admin.locator("#explained")
            await expect(explained.locator("tr[data-agency='ngo-north']")).to_contain_text(
                "support"
            )
            await expect(explained.locator("tr[data-agency='mvd-ctu']")).to_contain_text(
                "anonymous"
            )
            await expect(admin.locator("#explained-clocks")).to_contain_text("30 days")
            await accessible(admin)

            # The console as a process of its own, beside the stack.
            async with httpx.AsyncClient(base_url=alone) as c:

                async def up() -> bool:
                    try:
                        return (await c.get("/readyz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await wait_for(up, timeout=60)
            police = await sign_in(browser, exchange, "mvd-ctu.caseworker", "/console/inbox", alone)
            await expect(police.get_by_role("heading", name="Inbox")).to_be_visible()
            response = await police.goto("/console/inbox")
            assert response is not None
            headers = await response.all_headers()
            assert headers["cache-control"] == "no-store"
            assert headers["x-frame-options"] == "DENY"
        finally:
            await browser.close()
            console.send_signal(signal.SIGINT)
            assert console.wait(timeout=30) == 0
