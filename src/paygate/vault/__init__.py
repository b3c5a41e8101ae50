"""The card vault: the ONLY package that ever sees a full PAN.

Pure building blocks (no database, no I/O except key providers):

* :mod:`paygate.vault.cards` -- PAN / expiry / CVC validation, brand detection, test-BIN countries.
* :mod:`paygate.vault.crypto` -- envelope encryption (AES-256-GCM per-record DEK wrapped by a KEK),
  ``SealedCard``, ``rewrap`` for cheap KEK rotation.
* :mod:`paygate.vault.keys` -- ``KeyProvider`` protocol, file provider (default) and PKCS#11 (HSM) provider.
* :mod:`paygate.vault.fingerprint` -- keyed, merchant-scoped card fingerprints.
* :mod:`paygate.vault.audit` -- hash-chained detokenization audit records and chain verification.
* :mod:`paygate.vault.errors` -- the exception hierarchy.

Design and PCI DSS mapping: ``docs/vault.md``. Submodules are imported explicitly (this file re-exports
nothing) so importing the vault never loads the PKCS#11 library by accident.
"""
