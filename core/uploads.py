"""Uploaded import files: the presence and file-type check, and a temporary copy to read from.

Every import screen and import endpoint needs the same steps: take the multipart field, refuse a
missing file or a type the readers cannot open, save it under a temporary directory with its own
suffix (the readers choose CSV or XLSX by suffix), and remove it afterwards. The caller keeps its own
wording, so web pages and API answers read as before.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.datastructures import FileStorage

from core.errors import ValidationError

TABLE_SUFFIXES = (".csv", ".xlsx")


def checked_suffix(upload: FileStorage | None, *, missing: str, wrong_type: str | None = None,
                   suffixes: tuple[str, ...] = TABLE_SUFFIXES) -> str:
    """The upload's suffix in lower case, after refusing a missing file or (unless ``wrong_type`` is
    None) a suffix not in ``suffixes``, with :class:`ValidationError` naming the field ``file``."""
    if upload is None or not upload.filename:
        raise ValidationError(missing, fields={"file": ["Required."]})
    suffix = Path(upload.filename).suffix.lower()
    if wrong_type is not None and suffix not in suffixes:
        raise ValidationError(wrong_type, fields={"file": ["Unsupported file type."]})
    return suffix


@contextmanager
def saved_upload(upload: FileStorage | None, *, missing: str, wrong_type: str | None = None,
                 suffixes: tuple[str, ...] = TABLE_SUFFIXES) -> Iterator[Path]:
    """Yield the path of a temporary copy of ``upload``; the copy is removed when the block ends.

    Raises :class:`ValidationError` with ``missing`` when no file was sent, and with ``wrong_type``
    when its suffix is not one of ``suffixes`` (``wrong_type=None`` leaves that check to the reader).
    Both name the field ``file`` so an API answer points at it.
    """
    suffix = checked_suffix(upload, missing=missing, wrong_type=wrong_type, suffixes=suffixes)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        assert upload is not None  # checked_suffix refused a missing file
        upload.save(path)
        yield path
