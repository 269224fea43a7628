"""inrcodec: store images, audio and video as implicit neural representations."""

__version__ = "0.1.0"
