from django.urls import path
from rest_framework.routers import SimpleRouter

from traces import views

router = SimpleRouter(trailing_slash=True)
router.register("runs", views.RunViewSet, basename="run")

urlpatterns = [
    path("runs/batch", views.RunBatchView.as_view(), name="runs-batch"),
    path(
        "runs/batch-transactional",
        views.RunBatchView.as_view(atomic=True),
        name="runs-batch-transactional",
    ),
    *router.urls,
]

# Trace files.
trace_files = SimpleRouter(trailing_slash=True)
trace_files.register("traces", views.TraceFileViewSet, basename="tracefile")
urlpatterns += [
    path("traces/write", views.TraceWriteView.as_view(), name="traces-write"),
    path("traces/write-batch", views.TraceWriteBatchView.as_view(), name="traces-write-batch"),
    path("traces/<int:pk>/content", views.TraceFileContentView.as_view(), name="tracefile-content"),
    *trace_files.urls,
]
