"""Tables, plots and the paper's claims, built from run folders (or W&B)."""
