"""The release: written into saved model files and `pixelsift --version`."""

__version__ = "0.1.0"
