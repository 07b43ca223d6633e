"""Annotation file formats (COCO, YOLO, Pascal VOC, CVAT for images 1.1), both directions. Django-free.

Each module turns the neutral records of `records` into its format's bytes and back, with that format's own
coordinate convention, and says what it could not carry (`Dropped`) instead of silently losing it. Nothing here
touches the database, the vault or the network: the exchange app feeds these writers from a keyset iteration and
feeds the readers' output into its validation.
"""
