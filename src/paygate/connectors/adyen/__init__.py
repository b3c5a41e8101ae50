"""Connector for Adyen's Checkout API (and the simulator's ``/adyen/v71`` dialect)."""

from paygate.connectors.adyen.connector import AdyenConnector

__all__ = ["AdyenConnector"]
