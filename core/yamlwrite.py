"""The one writer for config YAML: comment-preserving edits and one atomic, fsynced write.

Admins keep ``config/*.yaml`` in git with their own comments; a program that changes such
a file (the custom-fields API, ``plugins enable``) edits it through :func:`edit_text`, which
round-trips the document with ruamel.yaml so comments, key order and quoting stay where
the admin put them, and saves it with :func:`write_atomic` (temp file in the same folder,
fsync, ``os.replace``, fsync of the folder): a crash leaves the old file or the new one,
never half of one. Reading and validating stays with :mod:`core.config`.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap


def _round_trip() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 100
    y.indent(mapping=2, sequence=4, offset=2)
    y.allow_unicode = True
    return y


def edit_text(text: str, mutate: Callable[[Any], Any]) -> str:
    """``text`` after ``mutate(data)`` changed its data in place, comments kept.

    ``data`` is the document's top-level mapping (an empty one for an empty file); nested
    mappings behave like ``dict``. A plain ``dict`` assigned by ``mutate`` is written in
    block style. The caller validates the result with :mod:`core.config` before writing.
    """
    y = _round_trip()
    data = y.load(text) if text.strip() else None
    if data is None:
        data = CommentedMap()
    mutate(data)
    out = io.StringIO()
    y.dump(data, out)
    return out.getvalue()


def write_atomic(path: Path | str, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically and durably; the mode is kept."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        dfd = os.open(str(folder), os.O_RDONLY)
    except OSError:  # Windows: folders cannot be opened; the rename is durable there
        return
    try:
        os.fsync(dfd)
    except OSError:  # some file systems refuse fsync on a folder; the data itself is synced
        pass
    finally:
        os.close(dfd)


__all__ = ["edit_text", "write_atomic"]
