"""Datasets: labeled, need-to-know containers of imagery."""
