"""The one place that decides what third-party libraries may print on the user's terminal.

- `install()` (run on `import beyondscale`): torchao (installed for `--quantize`) is imported by
  transformers whenever a model is built, and logs a warning for each optional GPU kernel it cannot load
  and each Enum it registers with torch's pytree; none is used on CPU and none is actionable. Only those
  records below ERROR are dropped.
- `quiet_third_party()`: no progress bars or warnings from transformers / huggingface_hub / datasets /
  lm-eval and their neighbours (the CLI prints its own lines); called before tasks or a model load.
- `setup_logging(level)`: the `--log-level` of every command; below DEBUG it also quiets the libraries.
"""

from __future__ import annotations

import logging
import sys

from beyondscale.errors import UserError

LOG_LEVELS = ("debug", "info", "warning", "error")
NOISY_LOGGERS = ("transformers", "datasets", "urllib3", "filelock", "httpx", "huggingface_hub", "lm_eval")


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


def quiet_third_party() -> None:
    """Warnings and progress bars of transformers, huggingface_hub and friends off the terminal."""
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        import huggingface_hub

        huggingface_hub.utils.logging.set_verbosity_error()
        import datasets

        datasets.disable_progress_bars()
        _quiet_lm_eval()
    except Exception:  # noqa: BLE001 - cosmetics only: a missing or changed library prints what it prints
        pass


def _quiet_lm_eval() -> None:
    """lm-eval draws a tqdm bar while it builds each task's requests (lm_eval.api.task, 0.4.13): off."""
    import functools

    import lm_eval.api.task
    from tqdm import tqdm

    lm_eval.api.task.tqdm = functools.partial(tqdm, disable=True)


def check_log_level(level: str) -> str:
    """`level` lower-cased, or a UserError naming the flag."""
    if level.lower() not in LOG_LEVELS:
        raise UserError(f"--log-level {level}: expected {', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}")
    return level.lower()


def setup_logging(level: str = "warning") -> None:
    """Our records at `level` on stderr; third-party chatter quieted unless `level` is debug."""
    level = check_log_level(level)
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if level != "debug":
        quiet_third_party()
