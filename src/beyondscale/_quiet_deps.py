"""Keep optional dependencies' import-time chatter off the user's terminal.

torchao (installed for `--quantize`) is imported by transformers whenever a model is built, and logs a
warning for each optional GPU kernel it cannot load and each Enum it registers with torch's pytree;
none is used on CPU and none is actionable. Only those records below ERROR are dropped.
"""

from __future__ import annotations

import logging


class _Chatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        if record.name.startswith("torchao"):
            return False
        return "is an Enum subclass" not in str(record.msg)


def install() -> None:
    chatter = _Chatter()
    for name in ("torchao", "torchao.kernel.intmm", "torch.utils._pytree"):
        logging.getLogger(name).addFilter(chatter)
