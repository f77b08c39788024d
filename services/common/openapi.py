"""The OpenAPI documents, completed centrally so that they say what the services answer.

FastAPI describes what an endpoint returns when it works. What the shared machinery answers when
it does not (services.common.errors, .auth, .body) is added here, for every operation alike:

- 401 and 404 where the operation takes a bearer token (no valid token; a role that may not use
  the endpoint is answered 404, as is an object that is not the caller's), 404 where the path
  names an object, 422 where there are parameters or a body, and whatever an endpoint declared
  in its `responses` (409, 413, 415, 429...), all as RFC 9457 `application/problem+json` with
  the `Problem` schema unless the endpoint gave its own content (the OAuth token endpoint's
  RFC 6749 errors);
- the code lists the contracts check (`x-code-list` on a string schema: ISO 3166-1, ISO 3166-2,
  ISO 639-1, BCP 47 primary language subtags, and the configured agencies) stated as enumerations
  or patterns, so that a request valid by the document is one the service accepts.
"""

import functools
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI

from contracts.vocabulary import code_list_pattern, language_tag_pattern
from services.common.errors import PROBLEM_JSON

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details. `errors` (on 422) names each field that failed, "
    "by its path in the request, without echoing the value.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "examples": ["about:blank"]},
        "title": {"type": "string", "examples": ["Not Found"]},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request's path"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "examples": ["victim_referral/region"]},
                    "type": {"type": "string", "examples": ["value_error"]},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

DESCRIPTIONS = {
    400: "The body cannot be read (not UTF-8 text)",
    401: "No valid bearer token (`WWW-Authenticate` says why)",
    403: "Forbidden",
    404: "Not found, or not the caller's to know about: also the answer when the caller's roles "
    "do not allow this operation (existence is never confirmed)",
    409: "Conflict with the current state",
    413: "The body is too large",
    415: "The body is not `application/json`",
    422: "The request does not match the schema, or breaks a rule of the domain (`errors` names "
    "each field)",
    429: "Too many requests (`Retry-After` says when to try again)",
    503: "A dependency is not available",
}


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """A documented problem+json response, for an endpoint's `responses`."""
    return {
        "description": description or DESCRIPTIONS.get(status, "Error"),
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
    }


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the statuses an endpoint adds to the common ones (e.g. `problems(409)`);
    `responses={409: {"description": "..."}}` does the same with the endpoint's own words."""
    return {s: problem_response(s) for s in statuses}


CodeLists = dict[str, Callable[[], dict[str, Any]]]


def _code_lists(agencies: Iterable[str]) -> CodeLists:
    known = sorted(agencies)
    return {
        "iso3166-1": lambda: {"pattern": code_list_pattern("iso3166-1")},
        "iso3166-2": lambda: {"pattern": code_list_pattern("iso3166-2")},
        "iso639-1": lambda: {"pattern": code_list_pattern("iso639-1")},
        "bcp47": lambda: {"pattern": language_tag_pattern()},
        # Without a configuration there is nothing to check against (any slug is accepted).
        "agency": lambda: {"enum": known} if known else {},
    }


COMPONENTS = {
    "iso3166-1": "CountryCode",
    "iso3166-2": "RegionCode",
    "iso639-1": "LanguageCode",
    "bcp47": "LanguageTag",
    "agency": "ConfiguredAgencyId",
}


def _state_code_lists(node: Any, lists: CodeLists, components: dict[str, Any]) -> Any:
    """The schema with each `x-code-list` string schema replaced by a reference to a component
    that states its enumeration or pattern (once per document: the lists are long)."""
    if isinstance(node, dict):
        name = node.get("x-code-list")
        if isinstance(name, str) and name in lists:
            component = COMPONENTS[name]
            if component not in components:
                stated = lists[name]()
                schema = {k: v for k, v in node.items() if k != "examples"}
                if "enum" in stated:
                    schema.pop("pattern", None)  # the enumeration says more
                components[component] = schema | stated
            return {"$ref": f"#/components/schemas/{component}"}
        return {k: _state_code_lists(v, lists, components) for k, v in node.items()}
    if isinstance(node, list):
        return [_state_code_lists(v, lists, components) for v in node]
    return node


def _validation_schema(content: dict[str, Any]) -> bool:
    """Whether a response's content is FastAPI's own 422 description."""
    schema = content.get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/HTTPValidationError")


def _streams_in_3_1(content: dict[str, Any]) -> None:
    """A stream's media type as OpenAPI 3.1 can say it. FastAPI describes an event stream's
    items with OpenAPI 3.2's `itemSchema`, which a 3.1 document may not hold: kept as the
    extension `x-itemSchema`, beside a 3.1 `schema` (the body is text)."""
    for media in content.values():
        if isinstance(media, dict) and "itemSchema" in media:
            media["x-itemSchema"] = media.pop("itemSchema")
            media.setdefault("schema", {"type": "string"})


def complete(document: dict[str, Any], *, agencies: Iterable[str] = ()) -> dict[str, Any]:
    """The document with the shared error answers and the code lists stated (see the module)."""
    lists: dict[str, Any] = {}
    document = _state_code_lists(document, _code_lists(agencies), lists)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(lists)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    operation_ids: set[str] = set()
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if "operationId" in operation:
                # FastAPI gives a GET-and-HEAD route one id for both; ids must be unique.
                if operation["operationId"] in operation_ids:
                    operation["operationId"] += f"_{method}"
                operation_ids.add(operation["operationId"])
            responses: dict[str, Any] = operation["responses"]
            parameters = operation.get("parameters", [])
            common: set[int] = set()
            if operation.get("security"):
                common |= {401, 404}
            if any(p.get("in") == "path" for p in parameters):
                common.add(404)
            if parameters or "requestBody" in operation:
                common.add(422)
            if "requestBody" in operation:
                common.add(400)  # a body that cannot be read at all (not UTF-8)
                common.add(413)  # services.common.body.BodyLimit, on every route
                if "application/json" in operation["requestBody"].get("content", {}):
                    common.add(415)  # read_json, or json_media on the router
            for code in common:
                responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
            for status, response in responses.items():
                _streams_in_3_1(response.get("content") or {})
                if not status.startswith(("4", "5")):
                    continue
                content = response.get("content")
                if not content or _validation_schema(content):
                    response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
                    if status == "422":
                        response["description"] = DESCRIPTIONS[422]
    return document


def install(app: FastAPI, *, agencies: Iterable[str] = ()) -> None:
    """Serve the completed document (computed once, on first use)."""
    generate = app.openapi
    agencies = tuple(agencies)

    @functools.cache
    def openapi() -> dict[str, Any]:
        app.openapi_schema = complete(generate(), agencies=agencies)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
