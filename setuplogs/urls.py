from django.urls import re_path

from setuplogs import views

# With or without the trailing slash, as every route (see traces/urls.py).
urlpatterns = [
    re_path(
        r"^runs/(?P<run_id>[^/]+)/setup_logs/?$", views.SetupLogsView.as_view(), name="setup-logs"
    ),
    re_path(
        r"^runs/(?P<run_id>[^/]+)/setup_log/?$", views.SetupLogView.as_view(), name="setup-log"
    ),
]
