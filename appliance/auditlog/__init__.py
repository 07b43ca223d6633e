"""The audit log in the database: the append-only record table, the one way to append to it, and its checks.

Every audited action calls `appliance.auditlog.recorder.record` inside its own transaction, so the action and its
record commit or roll back together. Records are encoded by the Django-free `audit` package, which is also what an
auditor uses to verify them. Nothing here may update or delete a record; the database refuses it as well.
"""
