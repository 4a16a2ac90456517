"""beyondscale: measure what language-model scale really buys."""

__version__ = "0.1.0"
