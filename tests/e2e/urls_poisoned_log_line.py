"""An older server (no batch log endpoint) that fails with a 500 on any line
mentioning "poison", as a server bug on one odd line would."""

from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from setuplogs import views
from traces import urls as traces_urls

append_one = views.SetupLogView.as_view()


@csrf_exempt  # token-authenticated, as the view it wraps
def buggy_append_one(request, run_id):
    if b"poison" in request.body:
        return JsonResponse({"error": "Internal server error."}, status=500)
    return append_one(request, run_id=run_id)


urlpatterns = [
    path("api/v1/", include(traces_urls)),
    path("api/v1/runs/<str:run_id>/setup_log", buggy_append_one, name="setup-log"),
]
