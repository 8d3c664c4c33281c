"""Spaces SIP bridge: lets SIP phones take part in Spaces web meetings."""

__version__ = "0.1.0"
