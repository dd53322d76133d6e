import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchsvc.settings")

application = get_wsgi_application()

# Import every view now, then move what start-up built out of the garbage
# collector's sight: a 1000-item batch allocates enough objects to trigger full
# collections, which would otherwise walk all of Django each time.
get_resolver().url_patterns  # noqa: B018
gc.collect()
gc.freeze()
# A bulk request holds tens of thousands of live objects (its items, rows and
# results) that reference counting frees when it ends: collecting the youngest
# generation every 700 allocations walked them again and again for nothing.
gc.set_threshold(20_000, *gc.get_threshold()[1:])
