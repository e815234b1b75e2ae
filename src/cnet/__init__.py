"""cnet: a command-line container network manager for Linux."""

__version__ = "0.1.0"
