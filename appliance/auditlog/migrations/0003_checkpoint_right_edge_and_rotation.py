"""Checkpoints keep their tree's right edge and the key a rotation announces (see AuditCheckpoint).

SQLite rebuilds a table to add a NOT NULL column, and a rebuilt table loses its triggers; so the append-only
triggers are lifted first and installed again last, all inside this migration's one transaction.
"""

from django.db import migrations, models

from appliance.auditlog.triggers import install_sql, remove_sql


def install(apps, schema_editor):
    for statement in install_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement)


def remove(apps, schema_editor):
    for statement in remove_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("auditlog", "0002_append_only_triggers")]
    operations = [
        migrations.RunPython(remove, install),
        migrations.AlterField(
            model_name="auditcheckpoint",
            name="key_id",
            field=models.CharField(max_length=255),
        ),
        migrations.AddField(
            model_name="auditcheckpoint",
            name="right_edge",
            field=models.TextField(default="[]"),
        ),
        migrations.AddField(
            model_name="auditcheckpoint",
            name="rotate_to",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.RunPython(install, remove),
    ]
