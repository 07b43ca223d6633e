"""The auditor's kit: everything needed to check the appliance's audit log, importable without Django.

This package owns the audit record's wire form (RFC 8785 canonical JSON and its RFC 9162 leaf hash). It must
never import Django or anything of `appliance`: an auditor runs it on their own host with nothing but Python and
`cryptography`, and trusts it precisely because it shares no code path with the system it checks.
"""
