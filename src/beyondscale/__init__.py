"""beyondscale: measure what language-model scale really buys."""

__version__ = "0.1.0"

from beyondscale import _quiet_deps  # noqa: E402

_quiet_deps.install()  # torchao's import-time warnings (see the module)
