"""A server from before write-batch: the traces API without its batch endpoint."""

from django.urls import include, path

from traces import urls as traces_urls

urlpatterns = [
    path(
        "api/v1/",
        include([p for p in traces_urls.urlpatterns if p.name != "tracefile-write-batch"]),
    ),
]
