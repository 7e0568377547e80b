"""Who may do what: the deterministic state machine every peer runs.

Importing this package registers every transaction type; each module owns the
rules and state keys of one concern.
"""

from ledger.rules import access, aggregates, catalogue, consents, identity, membership, modules, records  # noqa: F401  (registers rules)
from ledger.rules.engine import RULES, Code, RuleViolation, Signer, apply_transaction

__all__ = ["Code", "RULES", "RuleViolation", "Signer", "apply_transaction"]
