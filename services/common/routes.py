"""Which service answers which paths (DESIGN.md: paths are unique across services). The
embedded stack dispatches by this table; the console uses it to reach each service at its own
address when the services run as separate processes without a path-routing proxy."""

from collections.abc import Sequence

ROUTES: dict[str, Sequence[str]] = {
    "identity": ("/oauth", "/.well-known", "/v1/admin"),
    "intake": ("/v1/referrals", "/v1/identification", "/v1/retention"),
    "router": ("/v1/routing",),
    "notify": ("/v1/inbox", "/v1/deliveries", "/v1/agencies"),
    "audit": ("/v1/audit",),
    "insights": ("/v1/statistics", "/v1/open-data"),
}


def owner(path: str) -> str | None:
    """The service answering `path` (the longest matching prefix), or None."""
    best: tuple[int, str | None] = (0, None)
    for service, prefixes in ROUTES.items():
        for prefix in prefixes:
            if (path == prefix or path.startswith(prefix + "/")) and len(prefix) > best[0]:
                best = (len(prefix), service)
    return best[1]
