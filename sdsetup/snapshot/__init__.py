"""Snapshots of an install, `update` and `rollback`.

model.py (pure: the snapshot document, the package diff), take.py (read the install into a snapshot),
restore.py (bring an install back to one), update.py (move the web UI to a newer pin after a snapshot),
journal.py (what an interrupted update or rollback was doing, so the same command continues)."""
