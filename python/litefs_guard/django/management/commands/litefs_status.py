"""``manage.py litefs_status``: this node's LiteFS role, as the guard sees it.

Exit status, as ``litefs-guard status``: 0 primary, 1 replica, 2 LiteFS not
running (or unknown), 3 the database is outside every guarded mount (its
writes go through unguarded and LiteFS does not replicate it), 78 the
guard's settings are unusable (the extension refuses to load).
"""

import json
import sqlite3
import sys

from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, connections

import litefs_guard

EXIT = {"primary": 0, "replica": 1, "not_running": 2, "outside": 3}
EXIT_SETTINGS = 78


class Command(BaseCommand):
    help = ("Print this node's LiteFS role, the primary, the mount and the guard's settings. "
            "Exit 0 primary, 1 replica, 2 not running, 3 database outside every guarded mount, "
            "78 unusable guard settings.")

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: %(default)s).")
        parser.add_argument("--json", action="store_true", help="Print litefs_config() as JSON.")

    def handle(self, *args, **options):
        info, opened = self._config(options["database"])
        if info.get("guarded") is False:
            # litefs_config()'s role is then the mount's, not this database's.
            info["mount_role"] = info.get("role")
            info["role"] = "outside"
            info["reason"] = (
                f"{info.get('database')} is outside the guarded mount {info.get('mount_dir')}: "
                "the guard does not watch it and LiteFS does not replicate it"
            )
        if options["json"]:
            self.stdout.write(json.dumps(info, indent=2, sort_keys=True))
        else:
            self._print(info, opened)
        code = EXIT.get(info.get("role"), 2)
        self.stdout.flush()
        sys.exit(code)

    def _config(self, alias):
        """litefs_config() of the alias's database; when it cannot be opened
        (the mount is gone), of a :memory: connection (the configured mount)."""
        conn = connections[alias]
        try:
            conn.ensure_connection()
            return litefs_guard.status(conn.connection), None
        except Exception as exc:
            opened = f"{conn.settings_dict.get('NAME')}: {exc}"
        try:
            mem = litefs_guard.connect(":memory:")
        except (litefs_guard.LiteFSGuardError, sqlite3.Error) as exc:
            # The extension refuses to load: its settings are unusable.
            self.stderr.write(f"litefs_guard cannot load: {exc}")
            self.stderr.flush()
            sys.exit(EXIT_SETTINGS)
        try:
            info = litefs_guard.status(mem)
        except sqlite3.Error as exc:
            info = {"role": None, "reason": str(exc)}
        finally:
            mem.close()
        if info.get("role") is None:
            info["role"] = "not_running"
            info.setdefault("reason", None)
            info["reason"] = info["reason"] or f"the database could not be opened ({opened})"
        return info, opened

    def _print(self, info, opened):
        role = info.get("role") or "not_running"
        rows = [
            ("role", role),
            ("primary", info.get("primary") or ("this node" if role == "primary" else "unknown")),
            ("mount", f"{info.get('mount_dir')} (from {info.get('mount_source')})"),
            ("database", info.get("database") or opened),
            *([("mount_role", info["mount_role"])] if "mount_role" in info else []),
            ("marker", info.get("marker")),
            ("config", info.get("config_file") or "none (no litefs.yml)"),
            ("immediate", info.get("immediate")),
            ("wal", info.get("keep_wal")),
            ("require_fuse", info.get("require_fuse")),
            ("guard", info.get("version")),
        ]
        if info.get("reason"):
            rows.insert(2, ("reason", info["reason"]))
        for k, v in rows:
            self.stdout.write(f"{k + ':':<14}{v}")
