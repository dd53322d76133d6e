import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """Owner columns, nullable until 0005 fills them in."""

    dependencies = [
        ("traces", "0003_trace_file_run_without_constraint"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="owner",
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="runs", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name="tracefile",
            name="owner",
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="trace_files", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name="tracefile",
            name="storage_name",
            field=models.CharField(default="", max_length=1052),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="tracefile",
            name="run_name",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
    ]
