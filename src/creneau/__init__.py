"""Créneau: an appointment-booking hub that a public hospital network runs itself."""

__version__ = "0.1.0"
