"""Training engine: the run folder, the loop, checkpoints, logging."""
