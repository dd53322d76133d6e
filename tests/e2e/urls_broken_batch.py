"""A server whose write-batch fails with a 500 every time; everything else works."""

from django.urls import include, path
from rest_framework.views import APIView


class BrokenBatchView(APIView):
    def post(self, request):
        raise RuntimeError("write-batch is broken on this server")


urlpatterns = [
    path("api/v1/traces/write-batch", BrokenBatchView.as_view()),
    path("", include("batchsvc.urls")),
]
