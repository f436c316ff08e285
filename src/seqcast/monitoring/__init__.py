"""Watching published models: live accuracy against arriving actuals, and input drift."""
