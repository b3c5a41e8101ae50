"""Connector for the paygate simulator's native dialect (``/native/v1``)."""

from paygate.connectors.simulator.connector import SimulatorConnector

__all__ = ["SimulatorConnector"]
