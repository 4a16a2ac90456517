"""Experiment trackers: MLflow, Weights & Biases, TensorBoard and trackio behind one `Tracker` protocol.

`open_trackers(names, args)` checks libraries, `--tracker-args` keys and tracking servers before any work;
`log_evaluation`, `log_training` and `log_report` log beyondscale's own results (see `track.log`).
Each library is optional: `pip install 'beyondscale[track]'`.
"""

from beyondscale.track.args import ACCEPTED, TRACKERS, parse_tracker_args
from beyondscale.track.base import EXTRA, Tracker
from beyondscale.track.log import log_evaluation, log_report, log_training, stored_result
from beyondscale.track.open import close_trackers, open_trackers

__all__ = [
    "ACCEPTED", "EXTRA", "TRACKERS", "Tracker", "close_trackers", "log_evaluation", "log_report", "log_training",
    "open_trackers", "parse_tracker_args", "stored_result",
]
