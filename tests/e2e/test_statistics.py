"""Statistics on the running exchange (`nrm up`): referrals submitted over HTTP reach the
insights service through the topics; the seeded `analyst` client reads suppressed counts and
nothing else; the analyst person (and the coordinator's supervisor) sees them as charts and
tables in the console."""

from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import SQLITE_ONLY, Exchange
from tests.e2e.test_console import CHROMIUM, OUTSIDE, accessible, shots, sign_in
from tests.e2e.test_rules import victim
from tests.support import wait_for

pytestmark = SQLITE_ONLY


def this_quarter() -> str:
    now = datetime.now(UTC)
    first = (now.month - 1) // 3 * 3 + 1
    return f"from={now.year}-{first:02d}&to={now.year}-{first + 2:02d}"


@pytest.mark.timeout(240)  # two sign-ins in a browser after the API's checks
async def test_analyst_reads_suppressed_counts_of_referrals_submitted_over_http(
    exchange: Exchange,
) -> None:
    # Victim referrals this quarter: 15 in KZ-79, 12 in KZ-11, 2 in KZ-39.
    plan = [("KZ-79", 15), ("KZ-11", 12), ("KZ-39", 2)]
    async with exchange.client() as c:
        for region, n in plan:
            for _ in range(n):
                r = await c.post(
                    "/v1/referrals",
                    json=victim(region=region),
                    headers=exchange.headers("labour-insp"),
                )
                assert r.status_code == 201, r.text
        analyst = exchange.headers("analyst")
        question = f"/v1/statistics?{this_quarter()}&by=region"

        async def counted() -> bool:
            r = await c.get(question, headers=analyst)
            return r.status_code == 200 and r.json()["total"]["value"] == 29

        await wait_for(counted, timeout=60)
        r = await c.get(question, headers=analyst)
        # KZ-39's 2 is below k = 11; alone it would follow from the total, so the smallest
        # other region (KZ-11, 12) is withheld with it.
        assert r.json()["cells"] == [
            {"region": "KZ-11", "value": None, "suppressed": True},
            {"region": "KZ-39", "value": None, "suppressed": True},
            {"region": "KZ-79", "value": 15, "suppressed": False},
        ]
        csv = await c.get(question, headers=analyst | {"Accept": "text/csv"})
        assert csv.text.splitlines()[-1] == "total,29,false"

        # The coordinator's supervisors may ask too; other agencies may not, and the analyst
        # sees no case data.
        r = await c.get(question, headers=exchange.headers("nrm-coordinator"))
        assert r.status_code == 200
        r = await c.get(question, headers=exchange.headers("ngo-south"))
        assert r.status_code == 404
        r = await c.get("/v1/referrals", headers=analyst)
        assert r.status_code == 404
        assert (await c.get(f"{exchange.base_url}/openapi/insights.json")).status_code == 200

    await statistics_in_the_console(exchange)


async def statistics_in_the_console(exchange: Exchange) -> None:
    """The analyst person signs in (password and TOTP) and lands on the charts of this year;
    the coordinator's supervisor reaches them from the navigation."""
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await sign_in(browser, exchange, "analyst", "/console/statistics")
            for heading in (
                "Monthly referrals by exploitation type",
                "The NRM funnel",
                "Referrals by region",
                "Time to acknowledge per agency",
                "Time to the reasonable-grounds decision per authority",
            ):
                await expect(page.get_by_role("heading", name=heading)).to_be_visible()
            regions = page.locator("#table-regions")
            await expect(regions.locator("tr[data-key='KZ-79'] td")).to_have_text("15")
            await expect(regions.locator("tr[data-key='KZ-39'] td")).to_have_text("suppressed")
            await expect(regions.locator("tr[data-key='total'] td")).to_have_text("29")
            funnel = page.locator("#table-funnel")
            await expect(funnel.locator("tr[data-key='submitted'] td")).to_have_text("29")
            await expect(funnel.locator("tr[data-key='confirmed'] td")).to_have_text("suppressed")
            month = datetime.now(UTC).strftime("%Y-%m")
            monthly = page.locator(f"#table-monthly tr[data-key='{month}'] td[data-key='sexual']")
            await expect(monthly).to_have_text("29")
            assert await page.locator("svg.chart").count() == 5
            await accessible(page)
            if folder := shots():
                folder.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(folder / "console-statistics.png"), full_page=True)

            coordinator = await sign_in(
                browser, exchange, "nrm-coordinator.supervisor", "/console/inbox"
            )
            await coordinator.get_by_role("link", name="Statistics").click()
            await expect(
                coordinator.locator("#table-regions tr[data-key='KZ-79'] td")
            ).to_have_text("15")
            assert OUTSIDE == []
        finally:
            await browser.close()
