"""imgdesk: download, compress and catalogue product images from a CSV."""

__version__ = "0.1.0"
