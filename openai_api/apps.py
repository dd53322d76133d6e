from django.apps import AppConfig


class OpenAIApiConfig(AppConfig):
    name = "openai_api"
    verbose_name = "OpenAI-compatible Batch API"

    def ready(self):
        from openai_api import retention  # noqa: F401  (registers the result files' purger)
