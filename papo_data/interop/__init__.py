"""Interoperability: the Hugging Face Hub and LeRobot datasets written by other tools."""

DEFAULT_LICENSE = "apache-2.0"  # the project's own, and LeRobot's convention
