"""Maintainer tools run by the Makefile (not part of the psystock package)."""
