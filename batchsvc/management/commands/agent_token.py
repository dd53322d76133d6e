from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Print the API token of a user (an agent), creating the user and token if needed."

    def add_arguments(self, parser):
        parser.add_argument("username", help="the agent's user; created (not staff) when missing")
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="replace the user's token with a new one: the old one stops working",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="print the token of a staff user too (it acts with the user's staff rights)",
        )

    @transaction.atomic
    def handle(self, *args, username, rotate, force, **options):
        User = get_user_model()
        check_username(User, username)
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()  # an agent logs in with its token, never a password
            user.save(update_fields=["password"])
            self.stderr.write(f"Created user {username!r} (not staff, no password).")
        elif not user.is_active:
            raise CommandError(f"User {username!r} is deactivated; reactivate it in the admin.")
        elif (user.is_staff or user.is_superuser) and not force:
            raise CommandError(
                f"User {username!r} is staff: its token sees and changes every owner's data. "
                "Give agents users of their own; pass --force to print it anyway."
            )
        if rotate:
            Token.objects.filter(user=user).delete()
        token, new = Token.objects.get_or_create(user=user)
        if rotate:
            self.stderr.write(f"Rotated the token of {username!r}: the old one no longer works.")
        elif new:
            self.stderr.write(f"Created a token for {username!r}.")
        self.stdout.write(token.key)


def check_username(User, username: str) -> None:
    """The rules the admin and createsuperuser apply (not blank, at most 150
    characters, letters, digits and @.+-_ only), as a CommandError."""
    try:
        User._meta.get_field(User.USERNAME_FIELD).clean(username, None)
    except ValidationError as exc:
        raise CommandError(
            f"{username!r} is not a valid username: {' '.join(exc.messages)}"
        ) from None
