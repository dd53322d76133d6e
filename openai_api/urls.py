"""Mounted at /openai/v1/ (batchsvc.urls), without trailing slashes, as the openai
SDK calls them; any other URL under it is OpenAI's 404."""

from django.urls import path, re_path

from openai_api import views
from openai_api.errors import not_found

urlpatterns = [
    path("files", views.FilesView.as_view(), name="openai-files"),
    path("files/<str:file_id>", views.FileView.as_view(), name="openai-file"),
    path("files/<str:file_id>/content", views.FileContentView.as_view(), name="openai-content"),
    path("batches", views.BatchesView.as_view(), name="openai-batches"),
    path("batches/<str:batch_id>", views.BatchView.as_view(), name="openai-batch"),
    path("batches/<str:batch_id>/cancel", views.BatchCancelView.as_view(), name="openai-cancel"),
    re_path(r"", not_found),
]
