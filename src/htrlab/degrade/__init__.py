"""Damage operations for handwriting images, and their composition."""

from htrlab.degrade.ops import OPS, SEVERITY_TABLE, apply_op, degrade_random, list_ops

__all__ = ["OPS", "SEVERITY_TABLE", "apply_op", "degrade_random", "list_ops"]
