"""The launcher seam: what differs between web UIs, behind one small interface chosen by the manifest's
`[launcher] kind`. A kind is one adapter module here exposing `LAUNCHER`, an object with:

- `translate_flags(flags, backend) -> list[str]`: the machine's generic flags (detect.recommend speaks
  A1111's COMMANDLINE_ARGS: --medvram, --use-cpu all, --no-half…) in this UI's own words (pure);
- `config_step(manifest, decisions, mirrors) -> Step`: the install step that writes the UI's launch
  configuration (webui-user.sh/.bat, or run_comfyui.sh/.bat); its `settings_for(ctx).env` is the launch
  environment the record keeps;
- `check_launch(install_dir, record, facts) -> (args, items)`: verify's reading and judging of it;
- `smoke_options(args) -> dict`: run_smoke keywords matching how the UI would run (device, precision);
- `start_hint -> str`: how to start it, for the install outcome.

Adding a UI is a manifest plus, at most, one module here (and its name in KINDS)."""

from __future__ import annotations

import importlib
from typing import Any

from sdsetup.i18n import t

KINDS = ("a1111", "forge", "comfyui")
DEFAULT_KIND = "a1111"


def get_launcher(kind: str | None) -> Any:
    """The adapter for `kind` (None: A1111's)."""
    kind = kind or DEFAULT_KIND
    if kind not in KINDS:
        from sdsetup.errors import usage_error

        raise usage_error(t("unknown launcher kind '{kind}'", kind=kind), t("use one of: {kinds}", kinds=', '.join(KINDS)))
    return importlib.import_module(f"sdsetup.launchers.{kind}").LAUNCHER


def for_manifest(manifest: Any) -> Any:
    return get_launcher(getattr(getattr(manifest, "launcher", None), "kind", None))


def for_record(record: Any) -> Any:
    return get_launcher(getattr(record, "launcher", None))
