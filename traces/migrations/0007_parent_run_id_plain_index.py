from django.db import migrations, models

# The name Django gave parent_run_id's db_index (and, on PostgreSQL, "..._like"
# beside it for varchar_pattern_ops).
OLD = "traces_run_parent_run_id_b60bb072"
NEW = "run_parent_run_id"


def forwards(apps, schema_editor):
    # Not AlterField: on SQLite it copies the whole table, and on PostgreSQL it would
    # build the index again where a rename keeps it.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX IF EXISTS "{OLD}_like"')
        schema_editor.execute(f'ALTER INDEX "{OLD}" RENAME TO "{NEW}"')
    else:
        schema_editor.execute(f'DROP INDEX "{OLD}"')
        schema_editor.execute(f'CREATE INDEX "{NEW}" ON "traces_run" ("parent_run_id")')


def backwards(apps, schema_editor):
    schema_editor.execute(f'DROP INDEX "{NEW}"')
    schema_editor.execute(f'CREATE INDEX "{OLD}" ON "traces_run" ("parent_run_id")')
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX "{OLD}_like" ON "traces_run" ("parent_run_id" varchar_pattern_ops)'
        )


class Migration(migrations.Migration):
    dependencies = [
        ("traces", "0006_owners_constraints"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="run",
                    name="parent_run_id",
                    field=models.CharField(blank=True, max_length=255),
                ),
                migrations.AddIndex(
                    model_name="run",
                    index=models.Index(fields=["parent_run_id"], name=NEW),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
