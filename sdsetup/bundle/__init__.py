"""Offline bundles: everything one install needs, as a static tree any web server (or a USB stick) serves.

    layout.py    where each thing lives in the tree (pure; the layout is the mirror layer's single base)
    target.py    the platform and Python a bundle is built for, as pip arguments (pure)
    pages.py     PEP 503 index pages and the mirror profile file (pure)
    lockfile.py  bundle.lock.json: every file's path, sha256, size and every repository's pin; comparing
    resolve.py   pip's choices for the target, step by step, in a scratch venv that mirrors the install's
    repos.py     bare repositories at their pins, served by git's dumb HTTP protocol
    create.py    `sdsetup bundle create` (resumable)
    check.py     `sdsetup bundle verify`
"""
