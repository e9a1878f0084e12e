"""A loopback Hugging Face hub (reached through HF_ENDPOINT) speaking the endpoints huggingface_hub's
model_info and snapshot_download use: GET /api/models/ORG/NAME/revision/REV answers the commit the
branch points at now; with `files`, GET /api/models/ORG/NAME/tree/REV lists them and
HEAD/GET /ORG/NAME/resolve/REV/PATH serves them, each body in `chunks` pieces `pause_s` apart so a
download is seen in progress. With repo_type "dataset" the same under /api/datasets/ and /datasets/
(huggingface_hub's repo_type="dataset" URLs). The public hub is out of reach from tests."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.doubles.threaded import on_thread


class FakeHub(ThreadingHTTPServer):
    def __init__(self, repo_id: str, commit: str, files: dict[str, bytes] | None = None,
                 chunks: int = 1, pause_s: float = 0.0, repo_type: str = "model"):
        super().__init__(("127.0.0.1", 0), _HubHandler)
        self.repo_id = repo_id
        self.repo_type = repo_type
        self.commit = commit
        self.files = files or {}
        self.chunks, self.pause_s = chunks, pause_s
        self.lookups: list[str] = []
        self.served: list[str] = []
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Authorization header)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _HubHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        self._answer(send_body=True)

    def do_HEAD(self):
        self._answer(send_body=False)

    def _answer(self, send_body: bool):
        path, repo = self.path.split("?")[0], re.escape(self.server.repo_id)
        self.server.requests.append((self.command, path, self.headers.get("Authorization")))
        api, files = ("/api/datasets", "/datasets") if self.server.repo_type == "dataset" else ("/api/models", "")
        if match := re.fullmatch(rf"{api}/{repo}/revision/([^/]+)", path):
            self.server.lookups.append(match.group(1))
            self._json({"id": self.server.repo_id, "sha": self.server.commit, "private": False}, send_body)
        elif re.fullmatch(rf"{api}/{repo}/tree/[^/]+", path):
            self._json([{"type": "file", "path": name, "size": len(body), "oid": _oid(body)}
                        for name, body in self.server.files.items()], send_body)
        elif (match := re.fullmatch(rf"{files}/{repo}/resolve/[^/]+/(.+)", path)) and match.group(1) in self.server.files:
            self._file(match.group(1), send_body)
        else:
            # The hub names the error in a header; huggingface_hub maps it to RepositoryNotFoundError.
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("content-length", "0")
            self.end_headers()

    def _json(self, data, send_body: bool):
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _file(self, name: str, send_body: bool):
        body = self.server.files[name]
        self.send_response(200)
        self.send_header("X-Repo-Commit", self.server.commit)
        self.send_header("ETag", f'"{_oid(body)}"')
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if not send_body:
            return
        self.server.served.append(name)
        step = -(-len(body) // self.server.chunks)
        for start in range(0, len(body), step):
            self.wfile.write(body[start:start + step])
            self.wfile.flush()
            time.sleep(self.server.pause_s)

    def log_message(self, *args):
        pass


def _oid(body: bytes) -> str:
    return hashlib.sha1(body).hexdigest()


@contextlib.contextmanager
def running_hub(repo_id: str, commit: str, files: dict[str, bytes] | None = None,
                chunks: int = 1, pause_s: float = 0.0, repo_type: str = "model") -> Iterator[FakeHub]:
    with on_thread(FakeHub(repo_id, commit, files, chunks, pause_s, repo_type)) as server:
        yield server
