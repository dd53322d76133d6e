from django.urls import path

from setuplogs import views

urlpatterns = [
    path("runs/<str:run_id>/setup_logs", views.SetupLogsView.as_view(), name="setup-logs"),
    path("runs/<str:run_id>/setup_log", views.SetupLogView.as_view(), name="setup-log"),
]
