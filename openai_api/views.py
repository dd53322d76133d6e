"""The OpenAI-compatible Batch API at /openai/v1/: files and batches as the openai SDK
calls them. Views parse, find the caller's object (another owner's is a 404, as a
missing one), call one service and render OpenAI's object."""

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from batchsvc.api.parsers import JSONParser, JSONRenderer
from batchsvc.api.throttling import ScopedThrottle
from openai_api import ids, selectors, services
from openai_api.authentication import BearerOrTokenAuthentication
from openai_api.errors import NotFound, exception_handler
from openai_api.listing import batch_create_fields, file_create_fields, listed
from openai_api.objects import batch_object, file_object, page
from openai_api.results import file_content
from openai_api.uploads import LimitedUploadHandler, TooLarge


class OpenAIView(APIView):
    authentication_classes = [BearerOrTokenAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    schema = None  # OpenAI's own API reference describes this surface
    throttled_posts = False

    def get_exception_handler(self):
        return exception_handler

    def get_throttles(self):
        if self.throttled_posts and self.request.method == "POST":
            self.throttle_scope = "batch"
            return [ScopedThrottle()]
        return []

    def get_file(self, file_id: str):
        pk = ids.file_pk(file_id)
        files = selectors.files_for(self.request.user).select_related("batch__openai")
        file = files.filter(pk=pk).first() if pk else None
        if file is None:
            raise NotFound(f"No such File object: {file_id}.", param="file_id")
        return file

    def get_batch(self, batch_id: str):
        pk = ids.batch_pk(batch_id)
        batch = selectors.batches_for(self.request.user).filter(pk=pk).first() if pk else None
        if batch is None:
            raise NotFound(f"No such Batch object: {batch_id}.", param="batch_id")
        return batch


class FilesView(OpenAIView):
    parser_classes = [MultiPartParser]
    throttled_posts = True

    def get(self, request):
        files = selectors.files_for(request.user).select_related("batch__openai")
        if purpose := request.query_params.get("purpose"):
            files = files.filter(purpose=purpose)
        found, more = listed(
            request, files, most=10_000, orders=True, what="File", more=("purpose",)
        )
        return Response(page([file_object(file) for file in found], has_more=more))

    def post(self, request):
        request._request.upload_handlers = [LimitedUploadHandler(request._request)]
        try:
            upload = request.FILES.get("file")
        except TooLarge as exc:
            raise services.file_too_large(exc.size) from None
        file = services.file_create(
            owner=request.user,
            upload=upload,
            **file_create_fields(request.data),
        )
        return Response(file_object(file))


class FileView(OpenAIView):
    def get(self, request, file_id):
        return Response(file_object(self.get_file(file_id)))

    def delete(self, request, file_id):
        file = self.get_file(file_id)
        services.file_delete(file=file)
        return Response({"id": file_id, "object": "file", "deleted": True})


class FileContentView(OpenAIView):
    def get(self, request, file_id):
        file = self.get_file(file_id)
        response = StreamingHttpResponse(file_content(file), content_type="application/jsonl")
        response["Content-Disposition"] = content_disposition_header(True, file.filename)
        return response

    def perform_content_negotiation(self, request, force=False):
        # The SDK asks for application/binary: the file is what it gets, whatever it asks.
        return super().perform_content_negotiation(request, force=True)


class BatchesView(OpenAIView):
    throttled_posts = True

    def get(self, request):
        found, more = listed(request, selectors.batches_for(request.user), most=100, what="Batch")
        return Response(page([batch_object(batch) for batch in found], has_more=more))

    def post(self, request):
        batch = services.batch_create(
            owner=request.user,
            **batch_create_fields(request.data),
            idempotency_key=request.headers.get("Idempotency-Key", "").strip(),
        )
        return Response(batch_object(selectors.batches_for(request.user).get(pk=batch.pk)))


class BatchView(OpenAIView):
    def get(self, request, batch_id):
        return Response(batch_object(self.get_batch(batch_id)))


class BatchCancelView(OpenAIView):
    def post(self, request, batch_id):
        batch = self.get_batch(batch_id)
        services.batch_cancel(batch=batch)
        return Response(batch_object(self.get_batch(batch_id)))
