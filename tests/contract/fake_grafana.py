"""A stand-in for the parts of Grafana's HTTP API that ``ccpulse dashboards push`` uses, on 127.0.0.1.

It follows the documented semantics (Grafana docs, "Folder HTTP API" and "Dashboard HTTP API"):
Bearer service-account tokens (401 without a valid one, 403 for a token without write access);
``GET /api/folders/:uid`` 200/404; ``POST /api/folders`` with the caller's uid (409 if taken);
``GET /api/dashboards/uid/:uid`` → ``{dashboard, meta}``; ``POST /api/dashboards/db`` saving by
uid: a new uid gets version 1, an existing one version + 1, and a save whose ``dashboard.version``
differs from the stored one without ``overwrite: true`` fails with 412 ``version-mismatch``.
The response is ``{id, uid, url, status, version, slug}``.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeGrafana:
    def __init__(self, token: str, viewer_token: str = "viewer-token") -> None:
        self.token = token
        self.viewer_token = viewer_token
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {"dashboard", "folderUid", "messages"}
        self.requests: list[tuple[str, str]] = []
        #: uid whose stored version someone else bumps right after we read it (to provoke a conflict).
        self.edit_after_read: str | None = None
        self._next_id = 1
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeGrafana:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def version(self, uid: str) -> int:
        return self.dashboards[uid]["dashboard"]["version"]

    # --- API semantics -------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def get_folder(self, uid: str) -> tuple[int, Any]:
        if uid not in self.folders:
            return 404, {"message": "folder not found", "status": "not-found"}
        return 200, self.folders[uid]

    def create_folder(self, body: dict[str, Any]) -> tuple[int, Any]:
        uid = body.get("uid") or f"f{self._next_id}"
        if not body.get("title"):
            return 400, {"message": "folder title cannot be empty"}
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        self.folders[uid] = {"id": self._new_id(), "uid": uid, "title": body["title"],
                             "url": f"/dashboards/f/{uid}/", "version": 1}
        return 200, self.folders[uid]

    def get_dashboard(self, uid: str) -> tuple[int, Any]:
        stored = self.dashboards.get(uid)
        if stored is None:
            return 404, {"message": "Dashboard not found"}
        result = {"dashboard": json.loads(json.dumps(stored["dashboard"])),
                  "meta": {"folderUid": stored["folderUid"], "version": stored["dashboard"]["version"],
                           "slug": _slug(stored["dashboard"]["title"]), "provisioned": False}}
        if self.edit_after_read == uid:
            stored["dashboard"]["version"] += 1  # a colleague saves from the UI meanwhile
            self.edit_after_read = None
        return 200, result

    def save_dashboard(self, body: dict[str, Any]) -> tuple[int, Any]:
        dashboard = dict(body.get("dashboard") or {})
        folder_uid = body.get("folderUid") or ""
        if not dashboard.get("title"):
            return 400, {"message": "Dashboard title cannot be empty", "status": "empty-name"}
        if folder_uid and folder_uid not in self.folders:
            return 400, {"message": "folder not found", "status": "folder-not-found"}
        uid = dashboard.get("uid") or f"d{self._next_id}"
        stored = self.dashboards.get(uid)
        if stored is None:
            dashboard.update(id=self._new_id(), uid=uid, version=1)
            self.dashboards[uid] = {"dashboard": dashboard, "folderUid": folder_uid, "messages": []}
        else:
            current = stored["dashboard"]["version"]
            if not body.get("overwrite") and dashboard.get("version", 0) != current:
                return 412, {"message": "The dashboard has been changed by someone else",
                             "status": "version-mismatch"}
            dashboard.update(id=stored["dashboard"]["id"], uid=uid, version=current + 1)
            stored.update(dashboard=dashboard, folderUid=folder_uid)
        self.dashboards[uid]["messages"].append(body.get("message", ""))
        slug = _slug(dashboard["title"])
        return 200, {"id": dashboard["id"], "uid": uid, "url": f"/d/{uid}/{slug}", "status": "success",
                     "version": dashboard["version"], "slug": slug}

    # --- HTTP plumbing -------------------------------------------------------------------------

    def _route(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        auth = headers.get("Authorization", "")
        if auth not in (f"Bearer {self.token}", f"Bearer {self.viewer_token}"):
            return 401, {"message": "Unauthorized"}
        if method == "POST" and auth == f"Bearer {self.viewer_token}":
            return 403, {"message": "You'll need additional permissions to perform this action."}
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return 400, {"message": "bad request data"}
        routes = [
            ("GET", r"/api/folders/([^/]+)", self.get_folder),
            ("POST", r"/api/folders", lambda: self.create_folder(payload)),
            ("GET", r"/api/dashboards/uid/([^/]+)", self.get_dashboard),
            ("POST", r"/api/dashboards/db", lambda: self.save_dashboard(payload)),
        ]
        for verb, pattern, action in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                with self._lock:
                    return action(*match.groups())
        return 404, {"message": "Not found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                fake.requests.append((self.command, path))
                status, payload = fake._route(self.command, path, self.headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
