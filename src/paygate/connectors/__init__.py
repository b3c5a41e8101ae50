"""Processor connectors: pure translators between paygate and each PSP's wire format."""
