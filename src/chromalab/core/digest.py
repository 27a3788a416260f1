"""The sha256 of a file, read in chunks (a large photo or archive is never in memory at once):
the one helper behind every check (weights, releases, downloads, manifests, MLflow artifacts)."""

import hashlib


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
