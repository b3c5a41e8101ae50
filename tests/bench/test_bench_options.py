"""Option errors: a run that cannot work is refused, naming the option, before any process starts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from paygate.bench.options import BenchOptions, OptionError
from paygate.cli import app


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"scenario": "refund-storm"}, "--scenario"),
        ({"concurrency": 0}, "--concurrency"),
        ({"duration": 5.0, "count": 10}, "--duration"),
        ({"count": 0}, "--count"),
        ({"key": "sk_test_x"}, "--key"),
        ({"url": "https://gw.example"}, "--url"),
        ({"url": "http://127.0.0.1:1"}, "--key"),
        ({"processor": "sandbox", "latency_ms": 50}, "--latency-ms"),
        ({"url": "http://127.0.0.1:1", "key": "sk_test_x", "floor": True}, "--floor"),
        ({"url": "http://127.0.0.1:1", "key": "sk_test_x", "latency_ms": 50}, "--latency-ms"),
        ({"api_processes": 0}, "--api-processes"),
        ({"database_url": "mysql://x/y"}, "--database-url"),
    ],
)
def test_options_that_cannot_work_are_refused_before_anything_starts(options: dict[str, object], option: str) -> None:
    with pytest.raises(OptionError) as err:
        BenchOptions(**options).validate()  # type: ignore[arg-type]
    assert err.value.option == option


def test_the_command_line_names_the_bad_option() -> None:
    result = CliRunner().invoke(app, ["bench", "--concurrency", "0"])
    assert result.exit_code == 2
    assert "--concurrency" in result.output
