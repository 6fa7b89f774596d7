"""Real servers on 127.0.0.1 that the tests own: HTTP files with faults, git, a PEP 503 index, a proxy."""
