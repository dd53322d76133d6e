from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from batchsvc.views import BatchGetView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/batch/get", BatchGetView.as_view(), name="batch-get"),
    path("api/v1/", include("traces.urls")),
    path("api/v1/", include("setuplogs.urls")),
    path("api/v1/", include("batches.urls")),
]

# A database outage raised in a middleware is a 503 there too (see batchsvc.errors).
handler500 = "batchsvc.errors.server_error"
