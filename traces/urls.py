from django.urls import path
from rest_framework.routers import SimpleRouter

from traces import views

router = SimpleRouter(trailing_slash=True)
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
