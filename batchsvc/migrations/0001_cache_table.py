from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # The default cache (throttle counters) is a database table, so that every web
    # process on every machine counts against the same limits; `migrate` creates it.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = []

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
