"""Notebook panels over :mod:`workbench` objects. Each panel holds view state only and calls the core."""
