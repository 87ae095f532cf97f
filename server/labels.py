"""Triton's classification extension: labels files (one label per line, index = line number) and top-k strings."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_labels(path: Path | None) -> list[str] | None:
    """Labels from `path` (UTF-8, one per line; trailing blank lines ignored), or None when there is no file."""
    if path is None:
        return None
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    # ':' separates the fields of a classification string; keep labels parseable.
    return [line.strip().replace(":", "_") for line in lines]


def classify(scores: np.ndarray, k: int, labels: list[str] | None = None) -> np.ndarray:
    """Triton's classification extension: [batch, classes] → BYTES [batch, k] of "score:index[:label]".

    A 1-D input is one row and gives [k]. Scores are printed like C++ std::to_string (6 decimals), as Triton does.
    """
    one = scores.ndim == 1
    rows = scores.reshape(1, -1) if one else scores.reshape(scores.shape[0], -1)
    n_classes = rows.shape[1]
    k = max(1, min(int(k), n_classes))
    if k < n_classes:
        part = np.argpartition(-rows, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(n_classes), (rows.shape[0], 1))
    top_scores = np.take_along_axis(rows, part, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(top_scores, order, axis=1)
    out = np.empty(idx.shape, dtype=object)
    for r in range(idx.shape[0]):
        for c in range(k):
            i = int(idx[r, c])
            s = f"{float(vals[r, c]):f}:{i}"
            if labels is not None and i < len(labels):
                s = f"{s}:{labels[i]}"
            out[r, c] = s.encode("utf-8")
    return out[0] if one else out
