"""A real HTTP server on 127.0.0.1 for download tests: http.server in a thread, serving files held
in memory, with HTTP Range support and scripted faults (drop the connection half-way through the
body once, answer 503 once), and a log of every request and its Range header."""

from __future__ import annotations

import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

DROP = "drop"  # send the headers of the whole answer, half the body, then close the connection
UNAVAILABLE = 503


class Request(NamedTuple):
    path: str
    range: str | None


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet: pytest shows failures, not access logs
        pass

    def do_GET(self):
        site: FileServer = self.server.site
        name = urllib.parse.unquote(urllib.parse.urlparse(self.path).path).lstrip("/")
        site.requests.append(Request(name, self.headers.get("Range")))
        if name not in site.files:
            self.send_error(404)
            return
        fault = site.faults[name].pop(0) if site.faults.get(name) else None
        if fault == UNAVAILABLE:
            self.send_error(503, "Service Unavailable")
            return
        data, start = site.files[name], 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and site.ranges:
            start = int(match[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        if site.ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if fault == DROP:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class FileServer:
    """`with FileServer() as server: server.add("a.zip", data, faults=[DROP])` -> its URL."""

    def __init__(self, ranges: bool = True):
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list] = {}
        self.requests: list[Request] = []
        self.ranges = ranges
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.site = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, name: str, data: bytes, faults=()) -> str:
        self.files[name] = data
        self.faults[name] = list(faults)
        return f"{self.base}/{urllib.parse.quote(name)}"

    def requests_for(self, name: str) -> list[Request]:
        return [r for r in self.requests if r.path == name]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
