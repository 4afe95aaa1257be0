"""The version of this SDK stand-in, in a module of its own so that every module can name it."""

__version__ = "0.2.0"
