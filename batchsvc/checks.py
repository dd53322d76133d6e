from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=False)
def check_secret_key(app_configs, **kwargs):
    if not settings.DEBUG and settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY:
        return [
            Warning(
                "SECRET_KEY is the development key while DEBUG is off.",
                hint="Set SECRET_KEY in the environment before serving real traffic.",
                id="batchsvc.W001",
            )
        ]
    return []
