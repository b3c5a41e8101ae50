"""Unknown routes answer in Stripe's envelope; the OpenAPI document is 3.1, complete for /v1 and self-contained;
the docs page and the health endpoints answer."""

from __future__ import annotations

import re
from typing import Any

import httpx2
import pytest

from tests.conftest import Merchant
from tests.integration.api._support import ok, stripe_error

pytestmark = pytest.mark.db

V1_OPERATIONS = {
    ("post", "/v1/payment_intents"),
    ("get", "/v1/payment_intents"),
    ("get", "/v1/payment_intents/{intent_id}"),
    ("post", "/v1/payment_intents/{intent_id}"),
    ("post", "/v1/payment_intents/{intent_id}/confirm"),
    ("post", "/v1/payment_intents/{intent_id}/capture"),
    ("post", "/v1/payment_intents/{intent_id}/cancel"),
    ("post", "/v1/refunds"),
    ("get", "/v1/refunds"),
    ("get", "/v1/refunds/{refund_id}"),
    ("post", "/v1/refunds/{refund_id}"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{event_id}"),
}
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@pytest.fixture
def anon(merchant: Merchant) -> Any:
    with httpx2.Client(base_url=merchant.server.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def openapi(anon: httpx2.Client) -> dict[str, Any]:
    resp = anon.get("/openapi.json")
    assert resp.status_code == 200
    doc: dict[str, Any] = resp.json()
    return doc


@pytest.mark.parametrize("path", ["/v1/nothing_here", "/v1/payment_intents/pi_1/explode", "/v2/payment_intents", "/"])
def test_unknown_route_is_404_in_stripe_envelope(merchant: Merchant, path: str) -> None:
    err = stripe_error(merchant.get(path), 404)
    assert err["type"] == "invalid_request_error"
    assert "Unrecognized request URL" in err["message"]
    assert path in err["message"]


def test_unknown_route_without_a_key_is_still_a_stripe_404(anon: httpx2.Client) -> None:
    stripe_error(anon.post("/v1/charges_that_do_not_exist"), 404)


def test_wrong_method_on_a_known_route_is_a_stripe_error_not_500(merchant: Merchant) -> None:
    err = stripe_error(merchant.http.delete("/v1/payment_intents"), 405)
    assert "Unrecognized request URL" in err["message"]


def test_every_response_carries_a_request_id(merchant: Merchant) -> None:
    assert merchant.get("/v1/payment_intents").headers["request-id"].startswith("req_")
    assert merchant.get("/v1/nope").headers["request-id"].startswith("req_")


def test_openapi_is_version_3_1(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1.")
    assert openapi["info"]["title"] == "paygate"


def test_openapi_lists_every_v1_operation(openapi: dict[str, Any]) -> None:
    listed = {(m, p) for p, ops in openapi["paths"].items() if p.startswith("/v1/") for m in ops}
    assert listed >= V1_OPERATIONS, V1_OPERATIONS - listed


def test_every_documented_v1_operation_is_served(merchant: Merchant, openapi: dict[str, Any]) -> None:
    for path, ops in openapi["paths"].items():
        if not path.startswith("/v1/"):
            continue
        concrete = re.sub(r"\{[^}]+\}", "obj_missing", path)
        for method in ops:
            resp = merchant.http.request(method.upper(), concrete)
            assert resp.status_code < 500, (method, path, resp.text)
            if resp.status_code in (404, 405):
                assert "Unrecognized request URL" not in resp.json()["error"]["message"], (method, path)


def test_every_v1_post_documents_form_and_json_bodies_with_the_same_schema(openapi: dict[str, Any]) -> None:
    posts = [(p, ops["post"]) for p, ops in openapi["paths"].items() if p.startswith("/v1/") and "post" in ops]
    assert {("post", p) for p, _ in posts} >= {op for op in V1_OPERATIONS if op[0] == "post"}
    for path, op in posts:
        content = op["requestBody"]["content"]
        assert {FORM, JSON} <= set(content), path
        assert content[FORM]["schema"] == content[JSON]["schema"], path
        assert "$ref" in content[FORM]["schema"], path


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"external or malformed $ref {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_ref_resolves_inside_components(openapi: dict[str, Any]) -> None:
    refs = _refs(openapi)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/"), ref
        assert isinstance(_resolve(openapi, ref), dict)


def _body_schema(doc: dict[str, Any], path: str) -> dict[str, Any]:
    schema: dict[str, Any] = _resolve(doc, doc["paths"][path]["post"]["requestBody"]["content"][FORM]["schema"]["$ref"])
    return schema


def test_each_post_body_schema_is_that_endpoint_s_own(openapi: dict[str, Any]) -> None:
    create_pi = _body_schema(openapi, "/v1/payment_intents")
    assert set(create_pi["required"]) == {"amount", "currency"}
    assert {"capture_method", "confirm", "payment_method", "metadata"} <= set(create_pi["properties"])
    create_refund = _body_schema(openapi, "/v1/refunds")
    assert {"payment_intent", "charge", "amount", "reason"} <= set(create_refund["properties"])
    assert "currency" not in create_refund["properties"]
    update_pi = _body_schema(openapi, "/v1/payment_intents/{intent_id}")
    assert "description" in update_pi["properties"]
    update_refund = _body_schema(openapi, "/v1/refunds/{refund_id}")
    assert set(update_refund["properties"]) <= {"metadata", "expand"}
    assert "amount_to_capture" in _body_schema(openapi, "/v1/payment_intents/{intent_id}/capture")["properties"]
    assert "cancellation_reason" in _body_schema(openapi, "/v1/payment_intents/{intent_id}/cancel")["properties"]
    assert "payment_method" in _body_schema(openapi, "/v1/payment_intents/{intent_id}/confirm")["properties"]


def _query_parameters(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}


def test_list_endpoints_document_their_query_parameters_in_stripes_styles(openapi: dict[str, Any]) -> None:
    listed = _query_parameters(openapi["paths"]["/v1/payment_intents"]["get"])
    assert set(listed) == {"limit", "starting_after", "ending_before", "created", "expand", "customer"}
    assert listed["limit"]["style"] == "form" and listed["limit"]["required"] is False
    for nested in ("created", "expand"):  # created[gte]=…, expand[]=…
        assert (listed[nested]["style"], listed[nested]["explode"]) == ("deepObject", True)
    created_kinds = {kind.get("type") for kind in listed["created"]["schema"]["anyOf"]}
    assert {"integer", "object"} <= created_kinds  # created=<timestamp> or created[gte]=…
    events = _query_parameters(openapi["paths"]["/v1/events"]["get"])
    assert {"type", "types", "delivery_success"} <= set(events)
    lists = [path for path in openapi["paths"] if path.startswith("/v1/") and "get" in openapi["paths"][path]]
    for path in ("/v1/refunds", "/v1/customers", "/v1/payment_methods", "/v1/webhook_endpoints",
                 "/v1/checkout/sessions", "/v1/checkout/sessions/{session_id}/line_items"):  # fmt: skip
        assert path in lists and "limit" in _query_parameters(openapi["paths"][path]["get"]), path


def test_openapi_declares_bearer_auth(openapi: dict[str, Any]) -> None:
    assert openapi["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert openapi["security"] == [{"bearerAuth": []}]


def test_docs_page_serves_html(anon: httpx2.Client) -> None:
    resp = anon.get("/docs")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in resp.text


def test_health_endpoints_answer_200(anon: httpx2.Client) -> None:
    assert ok(anon.get("/healthz")) == {"status": "ok"}
    assert ok(anon.get("/readyz")) == {"status": "ok"}
