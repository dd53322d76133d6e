"""A server whose write-batch answers too late for the client's batch_timeout."""

import time

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

DELAY = 1.0


class SlowBatchView(APIView):
    def post(self, request):
        time.sleep(DELAY)
        return Response({"success": False, "summary": {}, "results": []})


urlpatterns = [
    path("api/v1/traces/write-batch", SlowBatchView.as_view()),
    path("", include("batchsvc.urls")),
]
