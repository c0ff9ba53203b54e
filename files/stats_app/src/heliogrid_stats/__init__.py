"""HelioGrid stats: indexes the chain into SQLite and serves the network and energy figures."""

__version__ = "0.1.0"
