"""Contract: ``ccpulse dashboards push`` against a stand-in that follows Grafana's folder and dashboard API."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_grafana import FakeGrafana

from dashboards import generate
from streams.cli import main

pytestmark = pytest.mark.contract

TOKEN = "glsa_contract-test-token-0123456789"
UIDS = {"ccpulse-noc-wall", "ccpulse-region", "ccpulse-channels", "ccpulse-pipeline", "ccpulse-tickets"}


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with FakeGrafana(TOKEN) as server:
        yield server


@pytest.fixture
def dashboards_dir(tmp_path: Path) -> Path:
    target = tmp_path / "json"
    shutil.copytree(generate.JSON_DIR, target)
    return target


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GRAFANA_URL", "GRAFANA_TOKEN", "GRAFANA_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)


def push(url: str, directory: Path, *extra: str) -> int:
    return main(["dashboards", "push", "--url", url, "--dashboards-dir", str(directory), *extra])


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and TOKEN not in err
    return lines[0]


def test_push_creates_the_folder_and_every_dashboard(grafana: FakeGrafana, dashboards_dir: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert push(grafana.url, dashboards_dir) == 0
    assert grafana.folders["ccpulse"]["title"] == "ccpulse"
    assert set(grafana.dashboards) == UIDS
    for stored in grafana.dashboards.values():
        assert stored["folderUid"] == "ccpulse"
        assert stored["dashboard"]["version"] == 1
        assert stored["messages"] == ["ccpulse dashboards push"]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "folder ccpulse: created"
    assert sorted(out[1:]) == sorted(f"{uid}: created, version 1" for uid in UIDS)


def test_push_updates_a_changed_dashboard_and_leaves_the_others(
        grafana: FakeGrafana, dashboards_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert push(grafana.url, dashboards_dir) == 0
    path = dashboards_dir / "pipeline.json"
    model = json.loads(path.read_text())
    model["title"] = "ccpulse — pipeline health (v2)"
    path.write_text(json.dumps(model))
    capsys.readouterr()
    assert push(grafana.url, dashboards_dir) == 0
    out = capsys.readouterr().out
    assert "ccpulse-pipeline: updated, version 2" in out
    assert "folder" not in out
    assert grafana.version("ccpulse-pipeline") == 2
    assert grafana.dashboards["ccpulse-pipeline"]["dashboard"]["title"].endswith("(v2)")
    assert all(grafana.version(uid) == 1 for uid in UIDS - {"ccpulse-pipeline"})


def test_push_is_idempotent(grafana: FakeGrafana, dashboards_dir: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert push(grafana.url, dashboards_dir) == 0
    saves = grafana.requests.count(("POST", "/api/dashboards/db"))
    capsys.readouterr()
    assert push(grafana.url, dashboards_dir) == 0
    assert sorted(capsys.readouterr().out.splitlines()) == sorted(f"{uid}: unchanged, version 1" for uid in UIDS)
    assert grafana.requests.count(("POST", "/api/dashboards/db")) == saves
    assert grafana.requests.count(("POST", "/api/folders")) == 1


def test_push_moves_a_dashboard_found_in_another_folder(grafana: FakeGrafana, dashboards_dir: Path) -> None:
    assert push(grafana.url, dashboards_dir) == 0
    assert push(grafana.url, dashboards_dir, "--folder-uid", "wall", "--folder-title", "Wall") == 0
    assert grafana.folders["wall"]["title"] == "Wall"
    assert all(s["folderUid"] == "wall" and s["dashboard"]["version"] == 2 for s in grafana.dashboards.values())


def test_a_bad_token_fails_with_one_line(grafana: FakeGrafana, dashboards_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_wrong")
    assert push(grafana.url, dashboards_dir) != 0
    assert "rejected the token (401)" in one_error_line(capsys)
    assert not grafana.folders and not grafana.dashboards


def test_a_read_only_token_fails_with_one_line(grafana: FakeGrafana, dashboards_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", grafana.viewer_token)
    assert push(grafana.url, dashboards_dir) != 0
    assert "(403) while creating folder ccpulse" in one_error_line(capsys)


def test_the_token_can_come_from_a_file(grafana: FakeGrafana, dashboards_dir: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    monkeypatch.delenv("GRAFANA_TOKEN")
    monkeypatch.setenv("GRAFANA_TOKEN_FILE", str(secret))
    monkeypatch.setenv("GRAFANA_URL", grafana.url)
    assert main(["dashboards", "push", "--dashboards-dir", str(dashboards_dir)]) == 0
    assert set(grafana.dashboards) == UIDS


def test_a_concurrent_edit_is_a_conflict_not_an_overwrite(grafana: FakeGrafana, dashboards_dir: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert push(grafana.url, dashboards_dir) == 0
    path = dashboards_dir / "noc-wall.json"
    path.write_text(path.read_text().replace('"refresh": "30s"', '"refresh": "15s"'))
    grafana.edit_after_read = "ccpulse-noc-wall"
    capsys.readouterr()
    assert push(grafana.url, dashboards_dir) != 0
    assert "version conflict while saving dashboard ccpulse-noc-wall" in one_error_line(capsys)
    assert grafana.dashboards["ccpulse-noc-wall"]["dashboard"]["refresh"] == "30s"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("url", [f"http://127.0.0.1:{_closed_port()}", "http://ccpulse-no-such-host.invalid:3000"])
def test_a_wrong_url_fails_with_one_line(url: str, dashboards_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert push(url, dashboards_dir) != 0
    assert f"cannot reach Grafana at {url}" in one_error_line(capsys)
