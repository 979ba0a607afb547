"""core.uploads: an uploaded import file is checked, copied with its suffix, and removed afterwards."""

from __future__ import annotations

import io

import pytest
from werkzeug.datastructures import FileStorage

from core.errors import ValidationError
from core.uploads import checked_suffix, saved_upload


def _file(name: str, body: bytes = b"sku,name\nA1,Chair\n") -> FileStorage:
    return FileStorage(stream=io.BytesIO(body), filename=name)


def test_copy_keeps_suffix_and_body_and_is_removed() -> None:
    with saved_upload(_file("Prices.CSV"), missing="none", wrong_type="bad") as path:
        assert path.suffix == ".csv"
        assert path.read_bytes() == b"sku,name\nA1,Chair\n"
    assert not path.exists()


@pytest.mark.parametrize("upload", [None, FileStorage(stream=io.BytesIO(b""), filename="")])
def test_missing_file_is_refused_with_the_callers_words(upload: FileStorage | None) -> None:
    with pytest.raises(ValidationError) as exc, saved_upload(upload, missing="Choose a file.", wrong_type="bad"):
        pass
    assert exc.value.message == "Choose a file."
    assert exc.value.fields == {"file": ["Required."]}


def test_wrong_type_is_refused_unless_left_to_the_reader() -> None:
    with pytest.raises(ValidationError) as exc, saved_upload(_file("t.pdf"), missing="none", wrong_type="Use csv."):
        pass
    assert exc.value.message == "Use csv." and exc.value.fields == {"file": ["Unsupported file type."]}
    with saved_upload(_file("t.pdf"), missing="none") as path:
        assert path.suffix == ".pdf"


def test_checked_suffix_names_the_type_without_saving() -> None:
    assert checked_suffix(_file("Book.XLSX"), missing="none", wrong_type="bad") == ".xlsx"
    with pytest.raises(ValidationError):
        checked_suffix(_file("book.xls"), missing="none", wrong_type="bad")
