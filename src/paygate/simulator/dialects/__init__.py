"""Wire dialects served by the simulator: native, stripe, adyen."""
