"""HelioGrid metering agent: sensor -> watts -> watt-hours -> one transaction per excess kWh."""

__version__ = "0.1.0"
