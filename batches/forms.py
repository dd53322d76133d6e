"""The admin's upload form: the API's upload fields, for a person."""

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator

from batches.models import NAME_MAX, BatchPriority
from batches.processors.base import options_help, processor_names


class BatchAddForm(forms.Form):
    file = forms.FileField(help_text="A .csv or .xlsx with a question column.")
    name = forms.CharField(max_length=NAME_MAX, required=False, help_text="Default: the file name.")
    processor = forms.ChoiceField(choices=(), initial="echo")
    options = forms.JSONField(
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text='The processor\'s options as a JSON object, e.g. {"delay": 0.1}.',
    )
    priority = forms.ChoiceField(
        choices=BatchPriority.choices,
        initial=BatchPriority.NORMAL,
        help_text="Orders this owner's batches.",
    )
    concurrency = forms.IntegerField(
        required=False,
        min_value=1,
        help_text="How many of its conversations may run at once (empty: the server's default).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["processor"].choices = [(name, name) for name in processor_names()]
        self.fields["options"].help_text += f" Each processor takes its own: {options_help()}."
        # Read when the form is made, as the setting may change (tests, a deploy).
        concurrency = self.fields["concurrency"]
        concurrency.validators.append(MaxValueValidator(settings.BATCH_CONCURRENCY_MAX))
        concurrency.widget.attrs["max"] = settings.BATCH_CONCURRENCY_MAX
        concurrency.help_text = (
            f"How many of its conversations may run at once, 1 to "
            f"{settings.BATCH_CONCURRENCY_MAX} (empty: {settings.BATCH_CONCURRENCY_DEFAULT})."
        )

    def clean_options(self):
        options = self.cleaned_data.get("options")
        if options in (None, ""):
            return {}
        if not isinstance(options, dict):
            raise forms.ValidationError("options must be a JSON object.")
        return options
