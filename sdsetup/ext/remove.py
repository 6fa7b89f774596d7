"""Removing an extension (effects): its folder moves into DIR/.sdsetup/backups, never deleted."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.ext.record import load_extensions
from sdsetup.ext.rules import folder_for
from sdsetup.i18n import t


def remove_extension(root: Path, launcher: str, name: str) -> dict[str, Any]:
    """Move extensions/NAME into .sdsetup/backups (never deleted: the user may have changed it) and drop
    it from the record. Packages it installed stay: other extensions may use them."""
    from sdsetup.ext.record import drop
    from sdsetup.layout import InstallLayout

    path = root / folder_for(launcher) / name
    recorded = any(e.get("name") == name for e in load_extensions(root))
    if not path.is_dir():
        if recorded:
            drop(root, name)
            return {"name": name, "removed": False, "backup": None}
        raise SdsetupError(t("there is no extension {name} in {folder}", name=name, folder=path.parent),
                           t("see `sdsetup ext list` for the names"), ExitCode.USAGE)
    layout = InstallLayout(root)
    backup = layout.backup_path(f"{folder_for(launcher)}-{name}", time.strftime("%Y%m%d-%H%M%S"))
    backup.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, backup)
    drop(root, name)
    return {"name": name, "removed": True, "backup": str(backup)}
