from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from batchsvc.api.views import BatchGetView
from batchsvc.ops.health import ReadinessView, healthz
from batchsvc.ops.metrics import MetricsView

urlpatterns = [
    # Operations: no token (metrics have a guard of their own), and outside /api/.
    path("healthz", healthz, name="healthz"),
    path("readyz", ReadinessView.as_view(), name="readyz"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^api/v1/batch/get/?$", BatchGetView.as_view(), name="batch-get"),
    path("api/v1/", include("traces.urls")),
    path("api/v1/", include("setuplogs.urls")),
    path("api/v1/", include("batches.urls")),
    path("api/v1/", include("webhooks.urls")),
    # The OpenAI-compatible Batch API, where the openai SDK's base_url points.
    path("openai/v1/", include("openai_api.urls")),
]

# A database outage raised in a middleware is a 503 there too (see batchsvc.api.errors).
handler500 = "batchsvc.api.errors.server_error"
