"""The base every layer stands on: params (config), errors, paths, atomic writes, logs, digests,
git (vcs), Lab colour, images, timings, and the MLflow store (tracking)."""
