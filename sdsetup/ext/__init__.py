"""`sdsetup ext`: web UI extensions (A1111/Forge `extensions/`) and ComfyUI custom nodes.

One module per job: rules.py (pure: names, folders, which requirement would move a held package),
held.py (which packages the install holds, at which versions), record.py (what was added, at which
commit), add.py (clone at a commit through the github channel, requirements into the venv under the
held packages, all checked before anything changes), listing.py (`ext list`), remove.py (`ext remove`)."""
