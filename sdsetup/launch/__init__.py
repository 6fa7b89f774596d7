"""`sdsetup launch`: start the web UI the way its launch files would, keep its console, and when it fails
say why (the doctor on what it printed). plan.py (pure: command line, environment, port, console lines),
console.py (the child, streaming and the kept log). The doctor is called from commands/launch.py
(`top_finding`), the layer allowed to call another command."""
