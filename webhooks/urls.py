from rest_framework.routers import SimpleRouter

from webhooks.views import WebhookViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # with or without the slash, as every route of the API
router.register("webhooks", WebhookViewSet, basename="webhook")

urlpatterns = router.urls
