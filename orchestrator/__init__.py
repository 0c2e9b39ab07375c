"""Elastic scaling: adds and removes worker nodes over SSH from YAML thresholds (see issue 5)."""
