"""``python -m paygate.simulator --host 127.0.0.1 --port 8765 [--latency-ms N] [--error-rate F] …``"""

from __future__ import annotations

import argparse

from paygate.simulator.app import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="paygate-simulator", description="Run the paygate PSP simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--latency-jitter-ms", type=int, default=0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--reset-rate", type=float, default=0.0)
    parser.add_argument("--drop-response-rate", type=float, default=0.0)
    parser.add_argument("--slow-seconds", type=float, default=3.0)
    parser.add_argument("--hang-seconds", type=float, default=600.0)
    parser.add_argument("--webhook-url", default=None, help="may contain {dialect}")
    parser.add_argument("--webhook-secret", default=None)
    parser.add_argument("--adyen-hmac-key", default=None, help="hex HMAC key for Adyen notifications")
    parser.add_argument("--webhook-retry-base-seconds", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--retain-payments", type=int, default=None, help="keep only the newest N payments")
    parser.add_argument("--tally-metadata-key", default=None, help="count authorizations per value of this key")
    args = parser.parse_args(argv)
    serve(
        args.host,
        args.port,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        latency_jitter_ms=args.latency_jitter_ms,
        reset_rate=args.reset_rate,
        drop_response_rate=args.drop_response_rate,
        slow_seconds=args.slow_seconds,
        hang_seconds=args.hang_seconds,
        adyen_hmac_key=args.adyen_hmac_key,
        webhook_retry_base_seconds=args.webhook_retry_base_seconds,
        seed=args.seed,
        retain_payments=args.retain_payments,
        tally_metadata_key=args.tally_metadata_key,
    )


if __name__ == "__main__":
    main()
