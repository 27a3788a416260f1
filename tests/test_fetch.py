"""fetch: downloads from a real HTTP server on 127.0.0.1 that resume, retry, verify and cache."""

import hashlib
import logging
import os

import pytest

from chromalab.core.errors import UserError
from chromalab.data import fetch
from local_server import DROP, UNAVAILABLE, FileServer

# Real bytes, large enough to span several reads and to be cut in half meaningfully.
PAYLOAD = os.urandom(3 * fetch.CHUNK + 12345)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(fetch, "BACKOFF_SECONDS", 0.01)
    return tmp_path / "cache"


@pytest.fixture
def server():
    with FileServer() as s:
        yield s


def cached_files(cache) -> list[str]:
    return sorted(p.name for p in cache.rglob("*") if p.is_file() and p.name != ".lock")


def test_fetch_downloads_verifies_and_names_the_file_after_the_url(server, cache):
    url = server.add("data/archive.tar.gz", PAYLOAD)
    got = fetch.fetch(url, sha256=SHA, size=len(PAYLOAD))
    assert got.path.read_bytes() == PAYLOAD and got.sha256 == SHA
    assert got.path.name == "archive.tar.gz" and cache in got.path.parents
    assert cached_files(cache) == ["archive.tar.gz"]  # no .part left


def test_connection_dropped_mid_file_is_resumed_with_a_range_request(server):
    url = server.add("big.bin", PAYLOAD, faults=[DROP])
    got = fetch.fetch(url, sha256=SHA, size=len(PAYLOAD))
    first, second = server.requests_for("big.bin")
    assert first.range is None
    assert second.range == f"bytes={len(PAYLOAD) // 2}-"  # continued where the cut left off
    assert got.path.read_bytes() == PAYLOAD


def test_partial_file_left_by_a_killed_run_is_resumed(server, cache):
    url = server.add("big.bin", PAYLOAD)
    folder = cache / "downloads" / "sha256" / SHA
    folder.mkdir(parents=True)
    (folder / "big.bin.part").write_bytes(PAYLOAD[:1000])
    assert fetch.fetch(url, sha256=SHA).path.read_bytes() == PAYLOAD
    assert [r.range for r in server.requests_for("big.bin")] == ["bytes=1000-"]


def test_server_without_range_support_restarts_the_download(cache):
    with FileServer(ranges=False) as server:
        url = server.add("big.bin", PAYLOAD, faults=[DROP])
        got = fetch.fetch(url, sha256=SHA)
        assert len(server.requests_for("big.bin")) == 2
    assert got.path.read_bytes() == PAYLOAD


def test_503_is_retried_after_a_backoff(server, caplog):
    url = server.add("big.bin", PAYLOAD, faults=[UNAVAILABLE])
    assert fetch.fetch(url, sha256=SHA).path.read_bytes() == PAYLOAD
    assert len(server.requests_for("big.bin")) == 2
    assert "HTTP 503" in caplog.text and "retrying in 0.0 s (1/5)" in caplog.text


def test_backoff_doubles_each_retry():
    assert fetch.backoff_delays(4, 1.5) == [1.5, 3.0, 6.0, 12.0]


def test_gives_up_after_the_retries_with_one_line(server, monkeypatch):
    monkeypatch.setattr(fetch, "RETRIES", 2)
    url = server.add("big.bin", PAYLOAD, faults=[UNAVAILABLE] * 5)
    with pytest.raises(UserError) as err:
        fetch.fetch(url, sha256=SHA)
    assert str(err.value) == f"{url}: giving up after 2 retries: HTTP 503 Service Unavailable"
    assert len(server.requests_for("big.bin")) == 3


def test_checksum_mismatch_deletes_the_file_and_names_both_hashes(server, cache):
    url = server.add("big.bin", PAYLOAD)
    wrong = "0" * 64
    with pytest.raises(UserError) as err:
        fetch.fetch(url, sha256=wrong)
    message = str(err.value)
    assert message == f"{url}: sha256 mismatch: expected {wrong}, got {SHA}; the file was deleted"
    assert cached_files(cache) == []


def test_size_mismatch_is_refused_before_hashing(server, cache):
    url = server.add("big.bin", PAYLOAD)
    with pytest.raises(UserError, match=rf"size mismatch: expected 10 bytes, got {len(PAYLOAD)}"):
        fetch.fetch(url, sha256=SHA, size=10)
    assert cached_files(cache) == []


def test_a_verified_cached_file_is_reused_without_the_network(server):
    url = server.add("big.bin", PAYLOAD)
    first = fetch.fetch(url, sha256=SHA)
    server.files.clear()  # the server now answers 404 to everything
    again = fetch.fetch(url, sha256=SHA.upper())
    assert again.path == first.path and len(server.requests_for("big.bin")) == 1


def test_a_damaged_cached_file_is_downloaded_again(server):
    url = server.add("big.bin", PAYLOAD)
    path = fetch.fetch(url, sha256=SHA).path
    path.write_bytes(b"bit rot")
    assert fetch.fetch(url, sha256=SHA).path.read_bytes() == PAYLOAD
    assert len(server.requests_for("big.bin")) == 2


def test_without_a_checksum_the_url_is_fetched_every_time(server, caplog):
    caplog.set_level(logging.INFO, logger="chromalab.data.fetch")
    url = server.add("big.bin", PAYLOAD)
    assert fetch.fetch(url).sha256 == SHA
    assert fetch.fetch(url).sha256 == SHA
    assert len(server.requests_for("big.bin")) == 2
    assert f"sha256 {SHA} (set data.sha256 to pin it" in caplog.text


def test_missing_file_is_a_one_line_user_error(server):
    url = server.add("big.bin", PAYLOAD)
    with pytest.raises(UserError) as err:
        fetch.fetch(url.replace("big.bin", "nothing.zip"))
    assert str(err.value).endswith("nothing.zip: HTTP 404 Not Found")
    assert len(server.requests) == 1  # a 404 is not retried


def test_file_url_is_verified_in_place_and_never_deleted(tmp_path):
    local = tmp_path / "mine.bin"
    local.write_bytes(PAYLOAD)
    assert fetch.fetch(local.as_uri(), sha256=SHA).path == local
    with pytest.raises(UserError, match="sha256 mismatch") as err:
        fetch.fetch(local.as_uri(), sha256="1" * 64)
    assert "deleted" not in str(err.value) and local.read_bytes() == PAYLOAD
    with pytest.raises(UserError, match="no such file"):
        fetch.fetch((tmp_path / "gone.zip").as_uri())


def test_unsupported_scheme_is_refused():
    with pytest.raises(UserError, match="only http://, https:// and file:// URLs"):
        fetch.fetch("ftp://example.org/a.zip")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path / "c"))
    assert fetch.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(fetch.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fetch.cache_dir() == tmp_path / "xdg" / "chromalab"
