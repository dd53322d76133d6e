import django_filters

from batches.models import Batch, BatchStatus, Interaction, InteractionStatus


class BatchFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=BatchStatus.choices)

    class Meta:
        model = Batch
        fields = ["status", "processor"]


class InteractionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=InteractionStatus.choices)

    class Meta:
        model = Interaction
        fields = ["status", "chat_id"]
