"""Reads for webhooks: whose endpoints, and an endpoint's deliveries."""

from webhooks.models import Delivery, Endpoint


def endpoints_for(user):
    return Endpoint.objects.visible_to(user)


def deliveries_of(endpoint: Endpoint):
    return (
        Delivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related("attempt_set")
    )
