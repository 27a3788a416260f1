"""Downloads that survive real networks and never hand over bytes that were not verified.

Public datasets are hundreds of megabytes on servers that drop connections, and `dvc exp` runs and
fresh checkouts must not fetch them twice. So a file streams to `<name>.part` in a cache outside
the workspace, resumes with an HTTP Range request after a dropped connection (or a killed run),
retries transient failures with exponential backoff, and is checked against its size and sha256
before it is renamed into place; a mismatch deletes it. A cached file whose sha256 verifies is
reused without touching the network.

The cache is `$CHROMALAB_CACHE`, else `$XDG_CACHE_HOME/chromalab`, else `~/.cache/chromalab`.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import socket
import ssl
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import NamedTuple
from urllib.error import HTTPError, URLError

from tqdm import tqdm

from chromalab.core.digest import sha256_file
from chromalab.core.errors import UserError

log = logging.getLogger(__name__)

CACHE_ENV = "CHROMALAB_CACHE"
RETRIES = 5  # consecutive failures without progress before giving up
BACKOFF_SECONDS = 1.0  # first wait; each further retry waits twice as long
TIMEOUT_SECONDS = 60  # a stalled connection counts as a transient failure after this long
CHUNK = 1 << 20
# Statuses that say "try again later", not "this request is wrong".
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "chromalab-download/1"


class Fetched(NamedTuple):
    path: Path  # the verified local file
    sha256: str


class Transient(Exception):
    """A failure of the network or the server that a later attempt may not meet."""


def cache_dir() -> Path:
    """Where downloads and unpacked archives are kept, outside any workspace."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chromalab"


def backoff_delays(retries: int | None = None, base: float | None = None) -> list[float]:
    """Seconds to wait before each retry: base, 2·base, 4·base, … (RETRIES, BACKOFF_SECONDS)"""
    retries = RETRIES if retries is None else retries
    base = BACKOFF_SECONDS if base is None else base
    return [base * 2**i for i in range(retries)]


def file_name(url: str) -> str:
    """The last segment of the URL's path, which names the file in the cache."""
    name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    return name or "download"


def fetch(url: str, sha256: str | None = None, size: int | None = None) -> Fetched:
    """The file at an http(s) or file:// URL, verified against `sha256` and `size` when given.

    A download without a known sha256 cannot be reused safely, so it is fetched again each time
    (and its sha256 logged, to pin it)."""
    sha256 = sha256.lower() if sha256 else None
    scheme = urllib.parse.urlparse(url).scheme
    if scheme == "file":
        return _local(url, sha256, size)
    if scheme not in ("http", "https"):
        raise UserError(f"{url}: only http://, https:// and file:// URLs can be fetched")
    if sha256:
        folder = cache_dir() / "downloads" / "sha256" / sha256
    else:
        folder = cache_dir() / "downloads" / "url" / hashlib.sha256(url.encode()).hexdigest()[:16]
    target = folder / file_name(url)
    part = target.with_name(target.name + ".part")
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        if sha256 and target.is_file():
            try:
                _verify(target, url, sha256, size)
                log.info("%s: verified copy in the cache (%s), not downloaded", target.name, folder)
                return Fetched(target, sha256)
            except UserError as err:
                log.warning("cached %s is damaged (%s); downloading it again", target, err)
        if not sha256:
            # What a URL serves may change between runs: only a known sha256 makes old bytes
            # safe to continue from.
            part.unlink(missing_ok=True)
        _download(url, part, size)
        digest = _verify(part, url, sha256, size)
        os.replace(part, target)
    if not sha256:
        log.info("%s: sha256 %s (set data.sha256 to pin it and reuse the cache)", url, digest)
    return Fetched(target, digest)


def _local(url: str, sha256: str | None, size: int | None) -> Fetched:
    """A file:// URL: checked in place, never copied, and never deleted on a mismatch."""
    path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    if not path.is_file():
        raise UserError(f"{url}: no such file")
    return Fetched(path, _verify(path, url, sha256, size, delete=False))


@contextlib.contextmanager
def _locked(folder: Path):
    """One download at a time per file: queued `dvc exp` runs may start together."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock, as before
        yield
        return
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _verify(path: Path, url: str, sha256: str | None, size: int | None, delete: bool = True) -> str:
    """The file's sha256, after checking it and the size against what was published."""
    deleted = "; the file was deleted" if delete else ""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        if delete:
            path.unlink()
        raise UserError(f"{url}: size mismatch: expected {size} bytes, got {actual_size}{deleted}")
    digest = sha256_file(path)
    if sha256 and digest != sha256:
        if delete:
            path.unlink()
        raise UserError(f"{url}: sha256 mismatch: expected {sha256}, got {digest}{deleted}")
    return digest


def _download(url: str, part: Path, size: int | None) -> None:
    """Fill `part` with the URL's bytes, resuming and retrying until the server says it is done."""
    delays = backoff_delays()
    failures = 0
    started, start_bytes = time.monotonic(), _size(part)
    while True:
        before = _size(part)
        try:
            _transfer(url, part, size)
            break
        except Transient as err:
            # Bytes arrived since the last failure: a flaky link making progress, not a dead one.
            failures = 1 if _size(part) > before else failures + 1
            if failures > len(delays):
                raise UserError(f"{url}: giving up after {len(delays)} retries: {err}") from None
            delay = delays[failures - 1]
            log.warning("%s: %s; retrying in %.1f s (%d/%d)", url, err, delay, failures, len(delays))
            time.sleep(delay)
    seconds = max(time.monotonic() - started, 1e-6)
    got = _size(part) - start_bytes
    log.info("%s: %.1f MB in %.1f s (%.1f MB/s)", part.name[:-5], got / 1e6, seconds, got / 1e6 / seconds)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _open(url: str, offset: int):
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                      timeout=TIMEOUT_SECONDS)
    except HTTPError as err:
        if err.code in TRANSIENT_STATUS:
            raise Transient(f"HTTP {err.code} {err.reason}") from None
        if err.code == 416 and offset:
            return None  # the partial file is no prefix the server can continue
        raise UserError(f"{url}: HTTP {err.code} {err.reason}") from None
    except URLError as err:
        reason = err.reason
        if isinstance(reason, (ssl.SSLCertVerificationError, socket.gaierror)):
            raise UserError(f"{url}: {reason}") from None
        raise Transient(f"cannot connect ({reason})") from None
    except (OSError, http.client.HTTPException) as err:  # timeouts, resets, bad status lines
        raise Transient(f"{type(err).__name__}: {err}") from None


def _transfer(url: str, part: Path, size: int | None) -> None:
    """One request: append to `part` from where it ends (or restart); Transient if cut short."""
    offset = _size(part)
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    response = _open(url, offset)
    if response is None:
        log.warning("%s: the server cannot resume from byte %d; starting over", url, offset)
        part.unlink()
        response = _open(url, 0)
        offset = 0
    with response:
        if response.status == 206:
            if _range_start(response) != offset:
                part.unlink(missing_ok=True)
                raise Transient("the server answered with another byte range; starting over")
            mode = "ab"
            log.info("%s: resuming at byte %d", url, offset)
        else:
            if offset:
                log.warning("%s: the server ignored the resume request; starting over", url)
            mode, offset = "wb", 0
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        total = offset + expected if expected is not None else size
        received = 0
        with open(part, mode) as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name[:-5], disable=not sys.stderr.isatty(), leave=False,
        ) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as err:
                    raise Transient(f"connection lost after {offset + received} bytes ({err})") from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    # HTTPResponse.read(n) returns b"" when the connection closes early instead of raising.
    if expected is not None and received < expected:
        raise Transient(f"connection closed after {offset + received} of {offset + expected} bytes")


def _range_start(response) -> int | None:
    """The first byte of a 206 response, from `Content-Range: bytes START-END/TOTAL`."""
    value = response.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None
