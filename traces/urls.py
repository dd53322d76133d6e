from django.urls import path
from rest_framework.routers import SimpleRouter

from traces import views

# "/?": a client that leaves the slash off (POST /api/v1/runs) reaches the view
# rather than a redirect that would turn its POST into a GET.
router = SimpleRouter()
router.trailing_slash = "/?"  # the constructor only knows "/" or ""
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
trace_files = SimpleRouter()
trace_files.trailing_slash = "/?"
trace_files.register("traces", views.TraceFileViewSet, basename="tracefile")
urlpatterns += [
    path("traces/write", views.TraceWriteView.as_view(), name="traces-write"),
    path("traces/write-batch", views.TraceWriteBatchView.as_view(), name="traces-write-batch"),
    path("traces/<int:pk>/content", views.TraceFileContentView.as_view(), name="tracefile-content"),
    *trace_files.urls,
]
