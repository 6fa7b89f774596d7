"""`sdsetup gui`: a local web page over the same command functions as the CLI (docs/gui.md).

security.py decides who may ask (pure); jobs.py runs a command in a thread and keeps its progress
events; webui.py starts and stops the installed web UI; app.py maps the page's requests onto
sdsetup.commands.*; strings.py holds the page's words (through the catalog); static/ is the page.
Starlette and uvicorn are imported only here, so `sdsetup --help` never pays for them.
"""
