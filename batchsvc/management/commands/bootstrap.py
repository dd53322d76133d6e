import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create an admin user and an API token if there are none, and say how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin", help="(default: %(default)r)")
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="(default: %(default)r)"
        )

    def handle(self, *args, username, base_url, **options):
        User = get_user_model()
        admin = User.objects.filter(is_superuser=True).order_by("pk").first()
        if admin is None:
            password = secrets.token_urlsafe(12)
            admin = User.objects.create_superuser(username, password=password)
            self.stdout.write(f"Created admin user {username!r} with password {password!r}.")
        else:
            password = None
        token, created = Token.objects.get_or_create(user=admin)
        if created:
            self.stdout.write(f"Created an API token for {admin.get_username()!r}.")
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"  Admin:    {base_url}/admin/  (user {admin.get_username()!r}"
                    + (f", password {password!r})" if password else ", password as set before)"),
                    f"  API docs: {base_url}/api/docs/",
                    f"  API:      curl -H 'Authorization: Token {token.key}' \\\n"
                    f"                 {base_url}/api/v1/runs/",
                    "",
                ]
            )
        )
