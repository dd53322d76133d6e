"""The project's URLs plus a page that only writes its session, which
SessionMiddleware saves after the view has answered."""

from django.http import HttpResponse
from django.urls import path

from batchsvc.urls import handler500
from batchsvc.urls import urlpatterns as project_urlpatterns


def remember(request):
    request.session["seen"] = True
    return HttpResponse("remembered", content_type="text/plain")


urlpatterns = [path("remember/", remember), *project_urlpatterns]
__all__ = ["handler500", "urlpatterns"]
