from rest_framework.routers import SimpleRouter

from batches.views import BatchViewSet

router = SimpleRouter()
# /cancel and /cancel/ both: clients spell actions without the slash.
router.trailing_slash = "/?"
router.register("batches", BatchViewSet, basename="batch")

urlpatterns = router.urls
