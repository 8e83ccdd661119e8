"""simulcast-relay: one RTMP stream in, up to six live platforms out, byte for byte."""

__version__ = "0.1.0"
