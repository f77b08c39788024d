"""The embedded stack dispatches by services.common.routes: every path a service's API
modules declare must reach that service (`/v1/retention` once did not: intake answered it
only when run alone)."""

import importlib
import pkgutil

from fastapi import APIRouter
from fastapi.routing import APIRoute

from services.common.routes import ROUTES, owner


def test_every_path_a_service_declares_is_dispatched_to_it() -> None:
    wrong: dict[str, str | None] = {}
    for service in ROUTES:
        package = importlib.import_module(f"services.{service}")
        for info in pkgutil.iter_modules(package.__path__):
            if info.name in ("app", "consumer", "migrations"):
                continue
            module = importlib.import_module(f"services.{service}.{info.name}")
            for value in vars(module).values():
                if not isinstance(value, APIRouter):
                    continue
                for route in value.routes:
                    if isinstance(route, APIRoute) and owner(route.path) != service:
                        wrong[f"{service} {route.path}"] = owner(route.path)
    assert wrong == {}
