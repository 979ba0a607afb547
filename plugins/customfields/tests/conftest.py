import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import cf_gadgets  # noqa: E402


@pytest.fixture
def dovetail_plugins():
    return ["customfields", "cftest"]


@pytest.fixture
def dovetail_extra_plugins():
    return {"cftest": cf_gadgets}


@pytest.fixture
def fields_file(app, apply_config):
    """Write config/custom_fields.yaml of this test's app (a fresh mtime every time) and apply
    the config, as an admin does after editing the file (``apply=False``: only write it; a
    refused apply raises the located ConfigError and the version in force stays)."""
    import os

    from plugins.customfields import store

    path = store.state(app).path

    def write(text: str, *, apply: bool = True, force: bool = False) -> Path:
        path.write_text(text, encoding="utf-8")
        st = path.stat()
        bump = getattr(write, "n", 0) + 1
        write.n = bump
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))
        if apply:
            apply_config(force=force)
        return path

    return write
