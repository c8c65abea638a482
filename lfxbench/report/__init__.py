"""Reporting a run: results (the only reader of run files), leaderboard, compare, plots, bench."""
