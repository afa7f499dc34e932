"""Where ``dashboards push`` takes its token and URL from; the HTTP flows are in tests/contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboards import push
from streams.errors import CcpulseError


def test_the_token_comes_from_the_environment_before_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    assert push.token({"GRAFANA_TOKEN": "from-env", "GRAFANA_TOKEN_FILE": str(secret)}) == "from-env"
    assert push.token({"GRAFANA_TOKEN_FILE": str(secret)}) == "from-file"


@pytest.mark.parametrize(("env", "message"), [
    ({}, "no Grafana token: set GRAFANA_TOKEN or GRAFANA_TOKEN_FILE"),
    ({"GRAFANA_TOKEN_FILE": "/nonexistent/token"}, "cannot read /nonexistent/token"),
])
def test_a_missing_token_is_one_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(CcpulseError, match=message):
        push.token(env)


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("\n")
    with pytest.raises(CcpulseError, match="is empty"):
        push.token({"GRAFANA_TOKEN_FILE": str(secret)})


def test_the_push_command_has_no_token_flag() -> None:
    from streams.cli import build_parser

    parser = build_parser(["dashboards"])
    with pytest.raises(SystemExit):
        parser.parse_args(["dashboards", "push", "--token", "secret"])


@pytest.mark.parametrize(("url", "api"), [
    ("http://grafana:3000", "http://grafana:3000/api"),
    ("https://example.org/grafana", "https://example.org/grafana/api"),
    ("https://example.org/grafana/", "https://example.org/grafana/api"),
])
def test_urls_with_a_sub_path_reach_its_api(url: str, api: str) -> None:
    assert push.connect(url, "t").client.url == api


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(CcpulseError, match="not an http"):
        push.connect("grafana:3000", "t")
