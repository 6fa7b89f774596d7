"""`sdsetup models`: models added after the install, through the same routing and download engine.

source.py (pure: what SOURCE names), folders.py (pure: where a type goes in each UI), metadata.py (the
Hub, Civitai and ModelScope answers that give a file's name, size and sha256), token.py (the Civitai
token, sent to Civitai hosts only), place.py (download once, link into every install), listing.py."""
