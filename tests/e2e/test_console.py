"""The console in a real browser (Debian's chromium through Playwright), against one `nrm up`:
people sign in (password, then a TOTP code from pyotp) and walk the demo as they would; plus
the console's own defences (CSRF, CSP, no-store, the same "not found" for another agency's
referral as for none). `NRM_SCREENSHOTS_DIR` set (`make screenshots`): the walk saves the
inbox, a referral and the audit timeline there."""

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Exchange, start_exchange
from tests.e2e.test_people import code_for, people_of

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


async def sign_in(browser: Any, exchange: Exchange, username: str, next_path: str) -> Any:
    """A new browser context for the person, signed in through identity's pages; the page."""
    person = people_of(exchange)[username]
    context = await browser.new_context(
        base_url=exchange.base_url, viewport={"width": 1200, "height": 800}
    )
    context.set_default_timeout(TIMEOUT)
    page = await context.new_page()
    page.on(
        "request",
        lambda r: None if r.url.startswith(exchange.base_url) else OUTSIDE.append(r.url),
    )
    await page.goto(f"/console/login?lang=en&next={next_path}")
    await page.get_by_label("Username", exact=True).fill(username)
    await page.get_by_label("Password", exact=True).fill(person["password"])
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_label("One-time code", exact=True).fill(code_for(person))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{exchange.base_url}{next_path}")
    return page


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
            if folder := shots():
                await auditor.screenshot(path=str(folder / "console-audit.png"), full_page=True)
            await auditor.goto("/console/audit")
            await auditor.get_by_role("button", name="Verify log").click()
            await expect(auditor.locator("#verify-result")).to_contain_text("Log verified")

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
            await police.reload()
            await expect(police.locator("#delivery-status")).to_have_text("notified")

            # Declined with a reason: escalated to the coordinator, on its overview.
            await police.get_by_role("button", name="Acknowledge").click()
            await expect(police.locator("#delivery-status")).to_have_text("acknowledged")
            await police.get_by_label("Reason", exact=True).fill("Outside our region's unit")
            await police.get_by_role("button", name="Decline").click()
            await expect(police.locator("#delivery-status")).to_have_text("declined")
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
        rid = r.json()["id"]

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
        finally:
            await browser.close()
