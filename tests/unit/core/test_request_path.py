"""The path an idempotency key records is ``request.url.path``, also when it is taken from the scope directly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from paygate.http import _path, _query

_segment = st.text(alphabet="abcXYZ019_.-?#%\\/ é\t", min_size=0, max_size=12)
_hosts = st.sampled_from([None, "127.0.0.1:8000", "api.example.com", "[::1]:443", "bad host/x", "a@b", ""])


def _request(path: str, host: str | None, query: bytes = b"") -> Request:
    headers = [(b"host", host.encode())] if host is not None else []
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "path": path,
        "root_path": "",
        "query_string": query,
        "headers": headers,
    }
    return Request(scope)


@given(segments=st.lists(_segment, min_size=1, max_size=4), host=_hosts)
def test_recorded_path_equals_starlettes_url_path(segments: list[str], host: str | None) -> None:
    path = "/" + "/".join(segments)
    assert _path(_request(path, host)) == _request(path, host).url.path


@given(query=st.text(alphabet="ab=&[]%20+é#\t\n?", max_size=20), host=_hosts)
def test_query_equals_starlettes_url_query(query: str, host: str | None) -> None:
    raw = query.encode()
    assert _query(_request("/v1/x", host, raw)) == _request("/v1/x", host, raw).url.query
