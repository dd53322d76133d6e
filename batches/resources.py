"""Batches and their items in the cross-resource batch GET: a user sees their own,
staff see all; anyone else's answers 404, exactly like a missing one."""

import uuid

from batches.models import Batch, Interaction
from batches.serializers import BatchSerializer, InteractionDetailSerializer
from batchsvc.api.resources import register

register(
    "batches",
    serializer_class=BatchSerializer,
    visible_to=lambda user: Batch.objects.visible_to(user).select_related("owner"),
    id_type=uuid.UUID,
)
register(
    "interactions",
    serializer_class=InteractionDetailSerializer,
    visible_to=lambda user: Interaction.objects.visible_to(user),
)
