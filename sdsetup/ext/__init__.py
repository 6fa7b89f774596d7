"""`sdsetup ext`: web UI extensions (A1111/Forge `extensions/`) and ComfyUI custom nodes.

rules.py (pure: names, folders, which requirement would move a held package), record.py (what was added,
at which commit), add.py (clone at a commit through the github channel, requirements into the venv under
the install's constraints, all checked before anything changes)."""
