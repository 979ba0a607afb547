"""Developer helpers: ``python -m core.devtools revision PLUGIN MESSAGE``.

Builds an app with every available plugin on a scratch SQLite database, applies all
existing migrations, then autogenerates the next revision of PLUGIN from its models.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from core import migrate
from core.app import create_app
from core.plugins import discover


def revision(plugin: str, message: str) -> str:
    names = [n for n, av in discover().items() if av.error is None]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config"
        cfg.mkdir()
        (cfg / "roles.yaml").write_text("roles:\n  admin:\n    permissions: ['*']\n    scope: all\n")
        app = create_app(cfg, plugins=names, config={"database_url": f"sqlite:///{tmp}/x.db",
                                                     "secret_key": "dev"})
        with app.app_context():
            migrate.upgrade_all(app)
            return migrate.revision(app, plugin, message)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "revision":
        sys.exit("usage: python -m core.devtools revision PLUGIN MESSAGE")
    print(revision(sys.argv[2], sys.argv[3]))
