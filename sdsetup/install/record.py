"""Moved to sdsetup/install_record.py (a low module verify, doctor and bundle can read); kept importable."""

from sdsetup.install_record import (  # noqa: F401
    RECORD_FILE,
    RECORD_SCHEMA,
    STATE_DIR,
    FileRecord,
    HubFileRecord,
    InstallRecord,
    RepoRecord,
    load_record,
    record_path,
    save_record,
)
