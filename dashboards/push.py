"""Provision the dashboards through the Grafana HTTP API (grafana-client), for Grafanas not fed by files.

Upserts are optimistic: each dashboard is sent with the version currently stored under its uid
(none when new) and ``overwrite: false``, so Grafana answers 412 if someone changed it in between
and the push stops with one line instead of silently losing their edit. The token comes only from
the environment (``GRAFANA_TOKEN``) or a file (``GRAFANA_TOKEN_FILE``), never from a flag.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

from grafana_client import GrafanaApi, TokenAuth
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

from streams.errors import CcpulseError

TOKEN_ENV = "GRAFANA_TOKEN"
TOKEN_FILE_ENV = "GRAFANA_TOKEN_FILE"
URL_ENV = "GRAFANA_URL"
TIMEOUT_S = 10.0


class Pushed(NamedTuple):
    uid: str
    title: str
    version: int
    status: str  # "created", "updated" or "unchanged"


def token(env: Mapping[str, str] = os.environ) -> str:
    """The service-account token, from the environment or the file it names."""
    if env.get(TOKEN_ENV):
        return env[TOKEN_ENV].strip()
    if env.get(TOKEN_FILE_ENV):
        path = Path(env[TOKEN_FILE_ENV])
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CcpulseError(f"{TOKEN_FILE_ENV}: cannot read {path}: {exc.strerror}") from exc
        if value:
            return value
        raise CcpulseError(f"{TOKEN_FILE_ENV}: {path} is empty")
    raise CcpulseError(f"no Grafana token: set {TOKEN_ENV} or {TOKEN_FILE_ENV} (a service-account token)")


def connect(url: str, secret: str) -> GrafanaApi:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise CcpulseError(f"Grafana URL {url!r} is not an http(s) URL")
    # grafana-client appends "api" to the path prefix as is, so a sub-path must end with a slash.
    prefix = parsed.path.strip("/")
    return GrafanaApi(TokenAuth(secret), host=parsed.hostname, port=parsed.port, protocol=parsed.scheme,
                      url_path_prefix=f"{prefix}/" if prefix else "", timeout=TIMEOUT_S)


@contextmanager
def _one_line_errors(url: str, what: str) -> Iterator[None]:
    """Turn client and transport failures into one CcpulseError line; never echoes the token."""
    try:
        yield
    except GrafanaUnauthorizedError as exc:
        raise CcpulseError(f"Grafana at {url} rejected the token (401) while {what}") from exc
    except GrafanaClientError as exc:
        if exc.status_code == 403:
            raise CcpulseError(f"the token may not do this at {url} (403) while {what}") from exc
        if exc.status_code == 412:
            raise CcpulseError(f"version conflict while {what}: it changed in Grafana since it was read; "
                               "run the push again to overwrite it with the generated version") from exc
        raise CcpulseError(f"Grafana at {url} refused {what}: {exc.message}") from exc
    except GrafanaException as exc:
        raise CcpulseError(f"Grafana at {url} failed while {what}: {exc.message}") from exc
    except OSError as exc:  # grafana-client lets the transport's ConnectionError (an OSError) through
        raise CcpulseError(f"cannot reach Grafana at {url}: {type(exc).__name__}") from exc


def ensure_folder(api: GrafanaApi, url: str, uid: str, title: str) -> bool:
    """Create the folder unless it exists; True when it was created."""
    with _one_line_errors(url, f"reading folder {uid}"):
        try:
            api.folder.get_folder(uid)
            return False
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
    with _one_line_errors(url, f"creating folder {uid}"):
        api.folder.create_folder(title, uid=uid)
    return True


def _content(model: Mapping[str, Any]) -> dict[str, Any]:
    """The dashboard without the fields Grafana owns."""
    return {key: value for key, value in model.items() if key not in ("id", "version")}


def _stored(api: GrafanaApi, url: str, uid: str) -> dict[str, Any] | None:
    """The stored dashboard and its folder uid, or None when the uid is new."""
    with _one_line_errors(url, f"reading dashboard {uid}"):
        try:
            return api.dashboard.get_dashboard(uid)
        except GrafanaClientError as exc:
            if exc.status_code == 404:
                return None
            raise


def upsert(api: GrafanaApi, url: str, model: Mapping[str, Any], folder_uid: str, message: str) -> Pushed:
    """Create or update one dashboard by uid, guarded by the version read just before.

    A dashboard already stored with the same content in the same folder is left alone, so a
    repeated push adds no versions.
    """
    uid, title = model["uid"], model.get("title", model["uid"])
    stored = _stored(api, url, uid)
    dashboard = _content(model)
    if stored is not None:
        version = int(stored["dashboard"]["version"])
        if (_content(stored["dashboard"]) == dashboard
                and stored.get("meta", {}).get("folderUid") == folder_uid):
            return Pushed(uid, title, version, "unchanged")
        dashboard["version"] = version
    body = {"dashboard": dashboard, "folderUid": folder_uid, "message": message, "overwrite": False}
    with _one_line_errors(url, f"saving dashboard {uid}"):
        result = api.dashboard.update_dashboard(body)
    return Pushed(uid, title, int(result["version"]), "created" if stored is None else "updated")


def load(directory: Path) -> list[dict[str, Any]]:
    files = sorted(directory.glob("*.json"))
    if not files:
        raise CcpulseError(f"no dashboard JSON in {directory}")
    models = []
    for path in files:
        try:
            models.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise CcpulseError(f"cannot read dashboard {path}: {exc}") from exc
    return models


def push(url: str, secret: str, directory: Path, folder_uid: str, folder_title: str,
         report: Callable[[str], None] = print) -> list[Pushed]:
    """Push every dashboard of ``directory`` into the folder, reporting one line per step."""
    models = load(directory)
    api = connect(url, secret)
    if ensure_folder(api, url, folder_uid, folder_title):
        report(f"folder {folder_uid}: created")
    results = []
    for model in models:
        pushed = upsert(api, url, model, folder_uid, message="ccpulse dashboards push")
        report(f"{pushed.uid}: {pushed.status}, version {pushed.version}")
        results.append(pushed)
    return results
