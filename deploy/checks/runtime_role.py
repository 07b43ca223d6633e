# Run with `manage.py shell -c` as the service account: the app's own connection (runtime role, TLS verify-full)
# appends to and reads the audit log, and the database refuses it any change to a record.
import sys

from django.db import connection, transaction
from django.db.utils import ProgrammingError

with connection.cursor() as cursor:
    cursor.execute(
        "SELECT current_user, ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE pid = pg_backend_pid()"
    )
    user, ssl = cursor.fetchone()
    cursor.execute("SELECT count(*) FROM auditlog_auditrecord")
refused = []
for statement in (
    "UPDATE auditlog_auditrecord SET actor = actor",
    "DELETE FROM auditlog_auditrecord",
    "TRUNCATE auditlog_auditrecord",
    "DROP TABLE auditlog_auditrecord",
):
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    except ProgrammingError as exc:
        refused.append("permission denied" in str(exc) or "must be owner" in str(exc))
    else:
        refused.append(False)
print(f"runtime role: connected as {user} (TLS {ssl}); UPDATE, DELETE, TRUNCATE, DROP refused: {refused}")
sys.exit(0 if user == "appliance" and ssl and all(refused) else 1)
