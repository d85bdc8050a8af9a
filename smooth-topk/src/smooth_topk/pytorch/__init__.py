"""The loss in PyTorch operations only (any device, no compiler): the paths a row takes in
order, each with a proof of accuracy (`functional.PYTORCH_PATHS`): float64 power sums with an
error bound (`power_sums.py`, k <= 10), a rescaled linear-space product tree (`linear_tree.py`),
float64 log space (`log_space.py`); and a softplus exact in value and gradient (`softplus.py`)."""
