"""The access decision: role ∧ label dominance ∧ membership, deny by default, policy loaded from `policies/`.

Owns the one decision function, the queryset filter built from the same rules, the DRF permission class and the
view markers that the deny-by-default middleware enforces. It must never branch on a role's name: roles are data.
"""
