"""A loopback HTTP server speaking the part of the Hugging Face Hub API that ``huggingface_hub`` downloads use.

Serves ``/{repo}/resolve/{revision}/{file}`` (HEAD and GET, with ``X-Repo-Commit``, ``ETag``, ``Content-Length``
and ``Range``), ``/api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``, with the Hub's error headers
(``X-Error-Code``: RepoNotFound, EntryNotFound, RevisionNotFound, GatedRepo). Every request is counted, so tests
can assert that offline mode makes none. Point ``HF_ENDPOINT`` at ``server.url``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> files
    refs: dict[str, str] = field(default_factory=dict)  # "main" -> sha
    gated: bool = False


class HubServer:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self._etags: dict[tuple[str, str, str], str] = {}  # (repo, commit, file) -> sha256, hashed once when served
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def add_commit(self, repo_id: str, files: dict[str, bytes], gated: bool = False) -> str:
        """Add a commit holding ``files`` (the whole tree) and move ``main`` to it; returns the commit sha."""
        repo = self.repos.setdefault(repo_id, Repo(gated=gated))
        sha = hashlib.sha1(repr((repo_id, len(repo.commits), sorted(files))).encode()).hexdigest()
        repo.commits[sha] = dict(files)
        repo.refs["main"] = sha
        return sha

    def etag(self, repo_id: str, sha: str, name: str, data: bytes) -> str:
        """The Hub's ETag of an LFS file: its sha256 (each file is hashed once, not on every HEAD and GET)."""
        key = (repo_id, sha, name)
        with self._lock:
            cached = self._etags.get(key)
        if cached is None:
            cached = hashlib.sha256(data).hexdigest()
            with self._lock:
                self._etags[key] = cached
        return cached

    def count(self, fragment: str = "") -> int:
        with self._lock:
            return sum(fragment in path for _, path in self.requests)


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+|[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+|[^/]+?)(?:/revision/(?P<rev>[^/]+))?$")


def _handler(server: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output clean
            return

        def _error(self, status: int, code: str, commit: str | None = None) -> None:
            body = json.dumps({"error": code}).encode()
            self.send_response(status)
            if commit is not None:  # the Hub names the commit a missing file is missing from (the cache records it)
                self.send_header("X-Repo-Commit", commit)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _lookup(self, repo_id: str, rev: str) -> tuple[Repo, str, dict[str, bytes]] | None:
            repo = server.repos.get(repo_id)
            if repo is None:
                self._error(401, "RepoNotFound")  # the Hub answers 401 for unknown repos without a token
                return None
            if repo.gated and not self.headers.get("authorization"):
                self._error(401, "GatedRepo")
                return None
            sha = repo.refs.get(rev, rev)
            if sha not in repo.commits:
                self._error(404, "RevisionNotFound")
                return None
            return repo, sha, repo.commits[sha]

        def _serve(self) -> None:
            path = unquote(self.path.split("?")[0])
            with server._lock:
                server.requests.append((self.command, path))
            if m := _API.match(path):
                found = self._lookup(m["repo"], m["rev"] or "main")
                if found:
                    _, sha, files = found
                    body = json.dumps({"id": m["repo"], "sha": sha, "siblings": [{"rfilename": f} for f in files]})
                    self._send(200, body.encode(), {"Content-Type": "application/json"})
                return
            m = _RESOLVE.match(path)
            if not m:
                self._error(404, "NotFound")
                return
            found = self._lookup(m["repo"], m["rev"])
            if not found:
                return
            _, sha, files = found
            if m["file"] not in files:
                self._error(404, "EntryNotFound", commit=sha)
                return
            data = files[m["file"]]
            headers = {"X-Repo-Commit": sha, "ETag": f'"{server.etag(m["repo"], sha, m["file"], data)}"'}
            status, start = 200, 0
            if rng := re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "")):
                start = int(rng[1])
                end = int(rng[2]) if rng[2] else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                data, status = data[start : end + 1], 206
            self._send(status, data, headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = _serve

    return Handler
