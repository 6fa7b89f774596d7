"""One module per install step; each Step knows its inputs, whether it is done, and how to run."""
