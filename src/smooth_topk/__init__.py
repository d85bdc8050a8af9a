"""Smooth top-k SVM losses: exact, numerically safe, fast.

from smooth_topk import SmoothTopkSVM
criterion = SmoothTopkSVM(k=5, tau=1.0, alpha=1.0)
loss = criterion(logits, labels)
"""

from smooth_topk import functional
from smooth_topk.modules import HardTopkSVM, SmoothTopkSVM

__all__ = ["SmoothTopkSVM", "HardTopkSVM", "functional"]
