"""The pure clinical core: no file, network or database I/O happens below this package."""
