from rest_framework.routers import SimpleRouter

from traces import views

# "/?": every route answers with or without its trailing slash, so that a client
# that leaves it off (POST /api/v1/runs/batch) reaches the view rather than a
# redirect that would turn its POST into a GET. The router puts each viewset's
# collection actions (runs/batch, traces/write) before its detail route.
router = SimpleRouter()
router.trailing_slash = "/?"  # the constructor only knows "/" or ""
router.register("runs", views.RunViewSet, basename="run")
router.register("traces", views.TraceFileViewSet, basename="tracefile")

urlpatterns = router.urls
