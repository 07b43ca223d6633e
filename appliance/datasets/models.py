"""Datasets (items and imagery come with the vault)."""
