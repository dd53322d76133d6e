from django.db import migrations, models


class Migration(migrations.Migration):
    """Identifiers unique per owner; a trace file's run becomes a plain run_id."""

    dependencies = [("traces", "0005_owners_data")]

    operations = [
        # The foreign key first: it pins Run.run_id to being unique.
        migrations.RemoveField(model_name="tracefile", name="run"),
        migrations.RenameField(model_name="tracefile", old_name="run_name", new_name="run_id"),
        migrations.AlterField(
            model_name="run", name="event_id", field=models.UUIDField()
        ),
        migrations.AlterField(
            model_name="run", name="run_id", field=models.CharField(max_length=255)
        ),
        migrations.AlterField(
            model_name="tracefile", name="path", field=models.CharField(max_length=1024)
        ),
        migrations.AddConstraint(
            model_name="run",
            constraint=models.UniqueConstraint(fields=("owner", "event_id"), name="run_owner_event_id"),
        ),
        migrations.AddConstraint(
            model_name="run",
            constraint=models.UniqueConstraint(fields=("owner", "run_id"), name="run_owner_run_id"),
        ),
        migrations.AddConstraint(
            model_name="tracefile",
            constraint=models.UniqueConstraint(fields=("owner", "path"), name="tracefile_owner_path"),
        ),
        migrations.AddIndex(
            model_name="tracefile",
            index=models.Index(fields=["owner", "run_id"], name="tracefile_owner_run"),
        ),
    ]
