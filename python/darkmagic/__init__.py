"""darkmagic's pip package: the `darkmagic` command (a Rust binary) and its launcher.

The package holds no Python API: `darkmagic --help` lists the commands. See `_launcher` for how
the command finds this environment's torch.
"""
