"""A server as older deployments have it: the single-line log endpoint, no batch one."""

from django.urls import include, path

from setuplogs import views
from traces import urls as traces_urls

urlpatterns = [
    path("api/v1/", include(traces_urls)),
    path("api/v1/runs/<str:run_id>/setup_log", views.SetupLogView.as_view(), name="setup-log"),
]
