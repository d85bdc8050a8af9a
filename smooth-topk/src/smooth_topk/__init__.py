"""Smooth top-k SVM losses: exact, numerically safe, fast.

from smooth_topk import SmoothTopkSVM
criterion = SmoothTopkSVM(k=5, tau=1.0, alpha=1.0)
loss = criterion(logits, labels)
"""

__version__ = "0.4.0"

from smooth_topk import compat, functional  # noqa: E402
from smooth_topk.modules import HardTopkSVM, SmoothTopkSVM  # noqa: E402

__all__ = ["SmoothTopkSVM", "HardTopkSVM", "functional", "compat", "__version__"]
