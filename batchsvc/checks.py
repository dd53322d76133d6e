from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=False)
def check_secret_key(app_configs, **kwargs):
    # Settings refuse to start with DEBUG off and no key; this catches the development
    # key set by hand (copied from the settings into an environment file, say).
    if not settings.DEBUG and settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY:
        return [
            Warning(
                "SECRET_KEY is the development key while DEBUG is off.",
                hint="Set SECRET_KEY in the environment to a long random value of your own.",
                id="batchsvc.W001",
            )
        ]
    return []
