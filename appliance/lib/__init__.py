"""Django-free helpers shared by every app. Nothing here may import Django models."""
