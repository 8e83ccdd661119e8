"""Validate real responses against relay/api/web/openapi.yaml: the path, method and status must be
documented, and the body must match that response's schema (JSON Schema 2020-12, as OpenAPI 3.1 uses)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml


@cache
def spec() -> dict[str, Any]:
    """The OpenAPI document the relay serves."""
    data: dict[str, Any] = yaml.safe_load((resources.files("relay.api.web") / "openapi.yaml").read_text())
    return data


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def response_schema(path: str, method: str, status: int, content_type: str = "application/json") -> dict[str, Any]:
    """The schema of one documented response; KeyError names what the document lacks."""
    operation = spec()["paths"][path][method.lower()]
    responses = operation["responses"]
    if str(status) not in responses:
        raise KeyError(f"{method} {path} does not document status {status} (has {sorted(responses)})")
    response = _deref(responses[str(status)])
    schema: dict[str, Any] = response["content"][content_type]["schema"]
    return schema


def validate(body: Any, path: str, method: str, status: int) -> None:
    """Raise jsonschema.ValidationError unless `body` is what the document promises."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "components": spec()["components"], **response_schema(path, method, status)}
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(body)


def component(name: str) -> dict[str, Any]:
    """A wrapper schema that validates against components/schemas/<name>."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": spec()["components"],
            "$ref": f"#/components/schemas/{name}"}
