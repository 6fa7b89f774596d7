"""sdsetup: install a Stable Diffusion web UI, prove it works, and diagnose it when it does not."""

__version__ = "0.1.0"
