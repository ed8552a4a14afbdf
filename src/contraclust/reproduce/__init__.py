"""Reproducing the papers: their result tables as data, and ``reproduce`` (paper against measured)."""
from contraclust.reproduce.run import RUN_FOLDER, format_report, paper_preset, reproduce
from contraclust.reproduce.tables import paper_result, paper_tables

__all__ = ["RUN_FOLDER", "format_report", "paper_preset", "paper_result", "paper_tables", "reproduce"]
