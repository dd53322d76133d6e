"""argparse ``type=`` validators the management commands share."""

import argparse

from django.contrib.auth import get_user_model


def username(value: str):
    """The active user named ``value``: commands act as a named owner."""
    user = get_user_model().objects.filter(username=value).first()
    if user is None:
        raise argparse.ArgumentTypeError(f"there is no user {value!r}")
    if not user.is_active:
        raise argparse.ArgumentTypeError(f"user {value!r} is deactivated")
    return user
