"""Reproduction framework for the smooth top-k SVM paper: data, models, losses, engine, results."""
