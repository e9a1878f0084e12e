"""A loopback Hugging Face hub speaking the one endpoint HfApi.model_info uses (reached through
HF_ENDPOINT): GET /api/models/ORG/NAME/revision/REV answers the commit the branch points at now.
The public hub is out of reach from tests."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub(ThreadingHTTPServer):
    def __init__(self, repo_id: str, commit: str):
        super().__init__(("127.0.0.1", 0), _HubHandler)
        self.repo_id = repo_id
        self.commit = commit
        self.lookups: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _HubHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        match = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/?]+)", self.path.split("?")[0])
        if match is None or match.group(1) != self.server.repo_id:
            # The hub names the error in a header; huggingface_hub maps it to RepositoryNotFoundError.
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        self.server.lookups.append(match.group(2))
        body = json.dumps({"id": self.server.repo_id, "sha": self.server.commit, "private": False}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def running_hub(repo_id: str, commit: str) -> Iterator[FakeHub]:
    server = FakeHub(repo_id, commit)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
