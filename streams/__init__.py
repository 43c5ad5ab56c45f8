"""Rapport: streaming engagement analytics — the worker, CLI, local stack and analytics core."""
