"""A small valid-looking example of a JSON schema from the OpenAPI document: the required
fields only, each at its smallest allowed value (strings of letters, so patterns of names
match)."""

from __future__ import annotations

from typing import Any


def resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """Follow a `$ref` into the document's components."""
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def example_body(schema: dict[str, Any], document: dict[str, Any]) -> Any:
    """The smallest value the schema accepts, as far as a plain walk can tell."""
    schema = resolve(schema, document)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            choices = [s for s in schema[key] if resolve(s, document).get("type") != "null"]
            return example_body(choices[0] if choices else schema[key][0], document)
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example_body(props[name], document) for name in schema.get("required", [])}
    if kind == "array":
        return [example_body(schema.get("items", {}), document)] * schema.get("minItems", 0)
    if kind == "string":
        return "a" * max(schema.get("minLength", 0), 1)
    if kind == "integer":
        return max(schema.get("minimum", 0), schema.get("exclusiveMinimum", -1) + 1)
    if kind == "number":
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None
