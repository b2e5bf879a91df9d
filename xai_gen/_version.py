__version__ = "0.1.0"
"""The installed version of xai-gen (PEP 440); also written into every saved file's metadata."""
