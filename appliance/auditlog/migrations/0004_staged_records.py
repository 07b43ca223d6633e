"""Staged audit records (see AuditStaged): the table, and the trigger that refuses to change a staged record."""

from django.db import migrations, models

from appliance.auditlog.triggers import install_no_update_sql, remove_no_update_sql


def install(apps, schema_editor):
    for statement in install_no_update_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement)


def remove(apps, schema_editor):
    for statement in remove_no_update_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("auditlog", "0003_checkpoint_right_edge_and_rotation")]

    operations = [
        migrations.CreateModel(
            name="AuditStaged",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("body", models.TextField()),
            ],
            options={"ordering": ["id"]},
        ),
        migrations.RunPython(install, remove),
    ]
