from django.apps import AppConfig


class SetuplogsConfig(AppConfig):
    name = "setuplogs"
    verbose_name = "Setup logs"
